"""PyTorch CPU peer of `pnpm bench -- --only cpu` (run by src/torch-peer.ts, which parses its output).

Usage: python3 torch_peer.py '<spec JSON>'. The spec names one workload and its shapes; the script
prints one JSON object on stdout (schema checked by torch-peer.ts) and exits 0, or prints the reason
on stderr and exits non-zero. Unknown spec keys are errors.

  head           insightface's ArcFace step (normalised linear, clamp, margin on the target logit
                 under no_grad, scale, cross-entropy, backward) on x, W and labels read from files
                 that the bench wrote, so that both sides compute the same loss.
  mobilefacenet  insightface's own get_mbf(fp16=False, num_features=512), loaded from a checkout
                 given by path, one training step: forward (train mode), sum(emb * R) / N, backward.
  matmul         torch.mm at 1 thread and at `threads`.
"""
import importlib.util
import json
import os
import platform
import sys
import time

SPEC_KEYS = {
    'head': {'workload', 'threads', 'warmups', 'steps', 'batch', 'dim', 'classes', 's', 'm', 'data'},
    'mobilefacenet': {'workload', 'threads', 'warmups', 'steps', 'batches', 'size', 'embedding', 'insightface'},
    'matmul': {'workload', 'threads', 'warmups', 'steps', 'shapes'},
}
MBF_PATH = os.path.join('recognition', 'arcface_torch', 'backbones', 'mobilefacenet.py')


def fail(message):
    print(f'torch_peer.py: {message}', file=sys.stderr)
    sys.exit(2)


def parse_spec(argv):
    if len(argv) != 2:
        fail('expected one argument, the spec JSON')
    try:
        spec = json.loads(argv[1])
    except json.JSONDecodeError as e:
        fail(f'spec is not JSON: {e}')
    workload = spec.get('workload')
    if workload not in SPEC_KEYS:
        fail(f'spec.workload: "{workload}" is not one of {", ".join(SPEC_KEYS)}')
    unknown = sorted(set(spec) - SPEC_KEYS[workload])
    missing = sorted(SPEC_KEYS[workload] - set(spec))
    if unknown:
        fail(f'spec: unknown keys for {workload}: {", ".join(unknown)}')
    if missing:
        fail(f'spec: missing keys for {workload}: {", ".join(missing)}')
    return spec


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def time_steps(step, warmups, steps):
    """Median ms of `steps` calls of step() after `warmups` calls; returns (ms, last step's value)."""
    value = None
    for _ in range(warmups):
        value = step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        value = step()
        times.append((time.perf_counter() - t0) * 1000)
    return median(times), value


def openblas():
    """The OpenBLAS torch loaded (Debian's torch calls the generic libblas.so.3), to set its threads."""
    import ctypes
    with open('/proc/self/maps') as f:
        paths = sorted({line.split()[-1] for line in f if 'libopenblas' in line})
    if not paths:
        return None, None
    return paths[0], ctypes.CDLL(paths[0])


def set_threads(torch, blas, n):
    torch.set_num_threads(n)
    if blas is not None:
        blas.openblas_set_num_threads(n)


def read_floats(torch, path, count, dtype):
    with open(path, 'rb') as f:
        data = bytearray(f.read())
    t = torch.frombuffer(data, dtype=dtype)
    if t.numel() != count:
        fail(f'{path}: {t.numel()} values, expected {count}')
    return t


def run_head(torch, spec, blas):
    import torch.nn.functional as F
    B, D, C = spec['batch'], spec['dim'], spec['classes']
    x = read_floats(torch, os.path.join(spec['data'], 'x.f32'), B * D, torch.float32).view(B, D).requires_grad_()
    w = read_floats(torch, os.path.join(spec['data'], 'w.f32'), C * D, torch.float32).view(C, D).requires_grad_()
    labels = read_floats(torch, os.path.join(spec['data'], 'labels.i32'), B, torch.int32).long()
    rows = torch.arange(B)
    s, m = spec['s'], spec['m']

    def step():
        x.grad = None
        w.grad = None
        # insightface arcface_torch: PartialFC's normalised linear and clamp, CombinedMarginLoss's
        # margin under no_grad (d logit / d cos = s); the margin only on the target logit.
        cos = F.linear(F.normalize(x), F.normalize(w)).clamp(-1, 1)
        with torch.no_grad():
            target = cos[rows, labels]
            cos.index_put_((rows, labels), torch.cos(torch.acos(target) + m))
        loss = F.cross_entropy(cos * s, labels)
        loss.backward()
        return loss.item()

    ms, loss = time_steps(step, spec['warmups'], spec['steps'])
    return {'ms': ms, 'loss': loss}


def load_get_mbf(checkout):
    # The single file, not the package: backbones/__init__.py imports every other backbone.
    path = os.path.join(checkout, MBF_PATH)
    if not os.path.isfile(path):
        fail(f'insightface: no {MBF_PATH} under {checkout}')
    module_spec = importlib.util.spec_from_file_location('backbones.mobilefacenet', path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_mbf


def run_mobilefacenet(torch, spec, blas):
    import warnings
    # get_mbf's forward enters torch.cuda.amp.autocast(False), which warns once on a CPU-only torch.
    warnings.filterwarnings('ignore', message='.*CUDA is not available.*')
    get_mbf = load_get_mbf(spec['insightface'])
    torch.manual_seed(0)
    net = get_mbf(fp16=False, num_features=spec['embedding'])
    net.train()
    params = list(net.parameters())
    S, E = spec['size'], spec['embedding']
    rows = []
    for N in spec['batches']:
        x = torch.randn(N, 3, S, S)
        r = torch.randn(N, E)

        def step():
            for p in params:
                p.grad = None
            loss = (net(x) * r).sum() / N
            loss.backward()
            return loss.item()

        ms, loss = time_steps(step, spec['warmups'], spec['steps'])
        rows.append({'batch': N, 'ms': ms, 'loss': loss})
    return {'rows': rows, 'parameters': sum(p.numel() for p in params)}


def run_matmul(torch, spec, blas):
    rows = []
    for shape in spec['shapes']:
        m, n, k, trans_b = shape['m'], shape['n'], shape['k'], shape['transB']
        a = torch.randn(m, k)
        b = torch.randn(n, k) if trans_b else torch.randn(k, n)
        out = torch.empty(m, n)
        per_threads = {}
        for threads in (1, spec['threads']):
            set_threads(torch, blas, threads)
            per_threads[threads], _ = time_steps(lambda: torch.mm(a, b.t() if trans_b else b, out=out), spec['warmups'], spec['steps'])
        rows.append({'name': shape['name'], 'ms1': per_threads[1], 'msN': per_threads[spec['threads']]})
    set_threads(torch, blas, spec['threads'])
    return {'rows': rows}


RUNNERS = {'head': run_head, 'mobilefacenet': run_mobilefacenet, 'matmul': run_matmul}


def main():
    spec = parse_spec(sys.argv)
    import torch
    blas_path, blas = openblas()
    set_threads(torch, blas, spec['threads'])
    workload = spec['workload']
    result = RUNNERS[workload](torch, spec, blas)
    env = {
        'torch': torch.__version__,
        'python': platform.python_version(),
        'executable': sys.executable,
        'threads': torch.get_num_threads(),
        'blas': blas_path,
        'blasThreads': blas.openblas_get_num_threads() if blas is not None else None,
        'mallocMmapThreshold': os.environ.get('MALLOC_MMAP_THRESHOLD_'),
    }
    print(json.dumps({'workload': workload, 'env': env, **result}))


if __name__ == '__main__':
    main()
