#!/usr/bin/env bash
# The benchmark on a machine with a real GPU (an NVIDIA card with CUDA
# PyTorch, no Deno, no Vulkan loader, no network): WebGPU against PyTorch on
# the same card, then the WebGPU tests on that adapter.
#
#   scripts/gpu_bench.sh OUT_DIR
#
# It brings what the machine lacks from two folders beside the checkout:
#   .gl/   Debian's libvulkan1 (and the GL dispatch libraries) as .deb files,
#          unpacked into / so that wgpu finds the NVIDIA Vulkan driver;
#   .gpu/  deno.xz (the deno binary, xz-compressed) and denodir/ (a DENO_DIR
#          holding the npm packages Bios imports, filled by `deno cache`).
# Logs, bench/results/latest.{json,md}, a CPU profile of the training step
# and nvidia-smi's view go to OUT_DIR. GPU_PARTS (default
# bench,profile,tests,robust) picks the parts to run.
set -uo pipefail
out=${1:?usage: scripts/gpu_bench.sh OUT_DIR}
cd "$(dirname "$0")/.."
mkdir -p "$out"
exec > >(tee "$out/gpu_bench.log") 2>&1

step() { printf '\n== %s (%s s)\n' "$1" "$SECONDS"; }

step "GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm \
  --format=csv || exit 1

step "Vulkan loader"
if ! ldconfig -p | grep -q libvulkan.so.1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
ldconfig -p | grep libvulkan || { echo "no libvulkan after unpacking .gl"; exit 1; }
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json \
  /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then
    export VK_DRIVER_FILES=$icd
    echo "Vulkan driver: $icd"
    break
  fi
done

step "deno"
python3 -c 'import lzma, shutil, sys
with lzma.open(".gpu/deno.xz") as src, open("/tmp/deno", "wb") as dst:
    shutil.copyfileobj(src, dst)'
chmod +x /tmp/deno
export PATH=/tmp:$PATH DENO_DIR=$PWD/.gpu/denodir NO_COLOR=1
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
deno --version | head -1

step "adapter"
timeout 60 deno eval 'const a = await navigator.gpu.requestAdapter({
  powerPreference: "high-performance" });
const plain = (o: object) => Object.fromEntries(Object.entries(
  Object.getOwnPropertyDescriptors(Object.getPrototypeOf(o)))
  .filter(([, d]) => d.get).map(([k]) => [k, (o as never)[k]]));
console.log(JSON.stringify(a && { info: plain(a.info), limits: plain(a.limits) }));'
timeout 120 deno run -A bench/probe_worker.ts || exit 1

parts=${GPU_PARTS:-bench,profile,tests,robust}
has() { [[ ",$parts," == *",$1,"* ]]; }

if has profile; then
  step "where a webgpu step's host time goes"
  timeout 120 deno run -A bench/step_profile.ts --backend webgpu --steps 20
  timeout 120 deno run -A --cpu-prof --cpu-prof-dir="$out/prof" \
    bench/step_profile.ts --backend webgpu --steps 20 >/dev/null &&
    python3 scripts/cpuprofile_top.py "$out"/prof/*.cpuprofile 30
  timeout 120 deno run -A bench/step_profile.ts --kernels --steps 10 --top 40
  timeout 120 deno run -A bench/sample_worker.ts --backend webgpu \
    --batches 1,8 --prompt 32 --max-tokens 64 --seconds 1
fi

if has bench; then
  step "benchmark"
  deno task bench --backends webgpu --peer-device cuda --python python3 \
    --sizes "${GPU_BENCH_SIZES:-512,1024,2048,4096,8192}" \
    --runs "${GPU_BENCH_RUNS:-3}"
  cp bench/results/latest.json bench/results/latest.md "$out/"
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
    --format=csv
fi

if has tests; then
  step "WebGPU tests on this adapter"
  BIOS_HOME=$(mktemp -d) timeout "${GPU_TEST_SECONDS:-120}" deno test -A \
    kernels/webgpu/ tests/backend_parity_test.ts tests/golden_test.ts \
    tests/sampling_test.ts >"$out/tests.log" 2>&1
  echo "tests exit status $?"
  grep -aE '^(ok|FAILED) \||FAILED|^error' "$out/tests.log" | tail -20
fi
if has robust; then
  step "the run's guarantees with the GPU as the default backend"
  BIOS_HOME=$(mktemp -d) BIOS_BACKEND=webgpu timeout "${GPU_TEST_SECONDS:-120}" \
    deno test -A --v8-flags=--expose-gc tests/device_handoff_test.ts \
    tests/hostile_input_test.ts tests/trainer_crash_test.ts \
    tests/shard_crash_test.ts tests/exactly_once_test.ts \
    >"$out/robust_tests.log" 2>&1
  echo "robust tests exit status $?"
  grep -aE '^(ok|FAILED) \||FAILED|^error|kills' "$out/robust_tests.log" | tail -20
fi
step "done"
