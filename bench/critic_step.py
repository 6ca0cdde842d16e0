"""Critic-step throughput: this project's step vs a plain eager float32 loop in the published style.

Prints one JSON document with every variant side by side (median over measured steps
after warm-up). Run:  python bench/critic_step.py --preset paper --batch 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flops import critic_step_flops, forward_flops  # noqa: E402
from time_to_quality import cpu_flags  # noqa: E402

from wgan.config import TrainConfig  # noqa: E402
from wgan.data import DataConfig, load_dataset  # noqa: E402
from wgan.device import autocast_factory, native_bf16  # noqa: E402
from wgan.loss import WGANGPLoss  # noqa: E402
from wgan.networks import Critic, Generator  # noqa: E402
from wgan.presets import PRESETS  # noqa: E402
from wgan.presets import network as preset  # noqa: E402
from wgan.training_loop import critic_step  # noqa: E402
from wgan.training_state import build_state  # noqa: E402


class PlanesCritic(Critic):
    """The published critic input: per-sample full-size one-hot planes through the label conv."""

    def forward(self, images, planes):
        x = torch.cat([F.leaky_relu(self.image_in(images), 0.2), F.leaky_relu(self.label_in(planes), 0.2)], 1)
        return self.to_score(self.body(x)).flatten()


def device() -> torch.device:
    """Every variant runs where training would: the GPU when there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def published_style(net_cfg, batch: int, steps: int) -> list[float]:
    """DataLoader with per-image transforms of the 300 px images (on the CPU, as published),
    separate critic passes, fp32, on the training device."""
    from torchvision.transforms import v2

    raw = load_dataset(DataConfig(crop=None))  # 300 x 300 uint8
    res = net_cfg.resolution
    transform = v2.Compose([v2.RandomRotation(360, fill=-1.0), v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(),
                            v2.CenterCrop(128), v2.Resize(res, antialias=True) if res != 128 else v2.Identity()])

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(raw)

        def __getitem__(self, i):
            return transform(raw.images[i][None].float() / 127.5 - 1), raw.labels[i]

    loader = torch.utils.data.DataLoader(Images(), batch_size=batch, shuffle=True, drop_last=True)
    torch.manual_seed(0)
    dev = device()
    G, D = Generator(net_cfg).to(dev), PlanesCritic(net_cfg).to(dev)
    opt = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.0, 0.9))
    times = []
    batches = iter(loader)
    for _ in range(steps):
        start = time.perf_counter()
        real, labels = next(batches)
        real, labels = real.to(dev), labels.to(dev)
        onehot = F.one_hot(labels, 4).float()
        planes = onehot[:, :, None, None].expand(-1, -1, res, res)
        fake = G(torch.randn(batch, net_cfg.z_dim, device=dev), labels).detach()
        eps = torch.rand(batch, 1, 1, 1, device=dev)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat, planes).sum(), x_hat, create_graph=True)
        gp = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        loss = D(fake, planes).mean() - D(real, planes).mean() + 10 * gp
        opt.zero_grad()
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def ours(net_cfg, batch: int, steps: int, amp: bool, channels_last: bool) -> list[float]:
    """This project's critic step (batch-tensor augmentation, fused real+fake pass, class-plane cache)."""
    cfg = TrainConfig(network=net_cfg, batch_size=batch, amp=amp)
    data = load_dataset(DataConfig(resolution=None if net_cfg.resolution == 128 else net_cfg.resolution))
    dev = device()
    state = build_state(cfg, len(data), dev)
    if channels_last:
        state.G.to(memory_format=torch.channels_last)
        state.D.to(memory_format=torch.channels_last)
    loss = WGANGPLoss(state.G, state.D, cfg.loss, autocast_factory(dev, amp))
    images, labels = data.images.to(dev), data.labels.to(dev)
    state.G.requires_grad_(False)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        critic_step(state, loss, images, labels, cfg)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4, help="measured steps per variant")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--variants", default="published,ours,ours-channels-last,ours-bf16,ours-bf16-channels-last")
    args = parser.parse_args()
    net_cfg = preset(args.preset)
    z = torch.randn(1, net_cfg.z_dim)
    img = torch.zeros(1, 1, net_cfg.resolution, net_cfg.resolution)
    flops = critic_step_flops(forward_flops(Generator(net_cfg).eval(), z, torch.zeros(1, dtype=torch.long)),
                              forward_flops(Critic(net_cfg), img, torch.zeros(1, dtype=torch.long)), args.batch)
    runs = {
        "published": lambda n: published_style(net_cfg, args.batch, n),
        "ours": lambda n: ours(net_cfg, args.batch, n, amp=False, channels_last=False),
        "ours-channels-last": lambda n: ours(net_cfg, args.batch, n, amp=False, channels_last=True),
        "ours-bf16": lambda n: ours(net_cfg, args.batch, n, amp=True, channels_last=False),
        "ours-bf16-channels-last": lambda n: ours(net_cfg, args.batch, n, amp=True, channels_last=True),
    }
    results = []
    for name in args.variants.split(","):
        if name.startswith("ours-bf16") and not native_bf16(device()):
            results.append({"variant": name, "skipped": "no native bf16 on this device (emulated bf16 convs "
                            "measured about 70x slower than fp32 on an AVX2-only CPU)"})
            continue
        times = runs[name](args.warmup + args.steps)[args.warmup:]
        step = statistics.median(times)
        results.append({"variant": name, "step_s": round(step, 4), "img_per_s": round(args.batch / step, 2),
                        "gflop_per_s": round(flops / step / 1e9, 1)})
    base = next((r["img_per_s"] for r in results if r["variant"] == "published"), None)
    for r in results:
        if "skipped" in r:
            continue
        r["speedup_vs_published"] = round(r["img_per_s"] / base, 2) if base else None
    print(json.dumps({
        "preset": args.preset, "resolution": net_cfg.resolution, "batch": args.batch,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(), "torch": torch.__version__, "cpu_flags": cpu_flags(),
        "gflop_per_step": round(flops / 1e9, 1), "measured_steps": args.steps, "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
