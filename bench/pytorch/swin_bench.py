#!/usr/bin/env python3
"""The PyTorch side of `scripts/bench-vs-pytorch.sh`: an independent eager PyTorch model of
the official Mona code's classifier, timed on the same cases as our `bench`.

The model is written from `shared/docs/spec.md` (the official code's behaviour), not from
our Rust code, so that the two sides only share the specification:

- the det-style Swin backbone of all three official sub-projects (spec §2): patch
  embedding with padding to /4, shifted windows in every odd block (the mask is computed
  once per stage and forward, even when a stage is one window), relative position bias,
  patch merging (x0, x1, x2, x3 order, bias-free reduction), DropPath with the linear
  rate schedule, and only the output norm of `out_indices = (3,)` (`norm3`);
- the tuning methods of spec §1 and §3 with the official freezing rules (§2.7, §3):
  `mona`, `adapter`, `adaptformer`, `lora`, `full`, `fixed`, `bitfit`, `norm_tuning`,
  `partial_1`;
- mmcls' `ImageClassifier`: global average pooling and a 1000-way `LinearClsHead`
  (N(0, 0.01) weights), softmax cross entropy.

It is written in the official code's eager style (explicit `q @ kᵀ`, softmax, `@ v`; no
fused attention, no `torch.compile`) because the comparison is against what the official
code costs. Dropouts with p = 0 (attention, projection, MLP, position) are left out: PyTorch
returns their input unchanged, so they cost nothing in the official code either.

A case is a name of our `bench --list` (`swin_b_mona_train_b32_224_bf16`,
`swin_t_mona_train_b2_224_cpu`, ...) or `ARCH:METHOD:train|infer:BATCH:SIZE[:bf16]`. One
run prints one JSON line. `--count-params` prints the parameter counts of every method on
Swin-T with the 1000-way head and checks them against our `count-params`.
"""

import argparse
import json
import math
import re
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# Spec §2.1: embed dim, depths, heads (window 7 for every preset used here).
ARCHS = {
    "swin_t": (96, (2, 2, 6, 2), (3, 6, 12, 24)),
    "swin_s": (96, (2, 2, 18, 2), (3, 6, 12, 24)),
    "swin_b": (128, (2, 2, 18, 2), (4, 8, 16, 32)),
    "swin_l": (192, (2, 2, 18, 2), (6, 12, 24, 48)),
}
WINDOW = 7
NUM_CLASSES = 1000
DROP_PATH_RATE = 0.2
BOTTLENECK = 64  # Mona's, Adapter's and AdaptFormer's hidden width; LoRA's rank


def backbone_trainable(method, name):
    """The official freezing rule of each backbone class (spec §2.7, §3), on the backbone's
    own parameter names (`layers.0.blocks.0.attn.qkv.weight`, ...)."""
    if method == "full":
        return True
    if method in ("mona", "adapter", "adaptformer", "fixed"):
        return "my_module" in name
    if method == "lora":
        return "lora_" in name
    if method == "bitfit":
        return "bias" in name
    if method == "norm_tuning":
        return "norm" in name
    if method == "partial_1":
        return "layers.3.blocks.1" in name
    raise ValueError(f"unknown method {method}")


METHODS = ("mona", "adapter", "adaptformer", "lora", "full", "fixed", "bitfit",
           "norm_tuning", "partial_1")


class DropPath(nn.Module):
    """Per-sample stochastic depth: keep with probability 1 − p, scaled by 1/(1 − p)."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


# ---------------------------------------------------------------------------------------
# Tuning modules (spec §1, §3)


class MonaOp(nn.Module):
    """The multi-cognitive convolutions: (DW3 + DW5 + DW7)/3 + x, then + 1×1(x)."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.conv2 = nn.Conv2d(c, c, 5, padding=2, groups=c)
        self.conv3 = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.projector = nn.Conv2d(c, c, 1)

    def forward(self, x):
        x = (self.conv1(x) + self.conv2(x) + self.conv3(x)) / 3.0 + x
        return x + self.projector(x)


class Mona(nn.Module):
    """Spec §1.2, on the residual stream after a residual add."""

    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))
        self.gammax = nn.Parameter(torch.ones(dim))
        self.project1 = nn.Linear(dim, BOTTLENECK)
        self.project2 = nn.Linear(BOTTLENECK, dim)
        self.adapter_conv = MonaOp(BOTTLENECK)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x, hw):
        h, w = hw
        b, n, _ = x.shape
        u = self.norm(x) * self.gamma + x * self.gammax
        p = self.project1(u).reshape(b, h, w, BOTTLENECK).permute(0, 3, 1, 2)
        r = self.adapter_conv(p).permute(0, 2, 3, 1).reshape(b, n, BOTTLENECK)
        s = self.dropout(F.gelu(r))
        return x + self.project2(s)


class Adapter(nn.Module):
    """Spec §3: x + W_up·Dropout(GELU(W_down·x + b)) + b_up."""

    def __init__(self, dim):
        super().__init__()
        self.project1 = nn.Linear(dim, BOTTLENECK)
        self.project2 = nn.Linear(BOTTLENECK, dim)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        return x + self.project2(self.dropout(F.gelu(self.project1(x))))


class AdaptFormer(nn.Module):
    """Spec §3: 0.1·(W_up·Dropout(GELU(W_down·x + b)) + b_up), no inner skip."""

    def __init__(self, dim):
        super().__init__()
        self.project1 = nn.Linear(dim, BOTTLENECK)
        self.project2 = nn.Linear(BOTTLENECK, dim)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        return 0.1 * self.project2(self.dropout(F.gelu(self.project1(x))))


class LoraQkv(nn.Linear):
    """loralib's MergedLinear on qkv (spec §3): r = 64, alpha 1 (scaling 1/64), q and v
    only, no LoRA dropout; the delta is merged into the weight in eval mode and taken out
    again in train mode (merge_weights = True)."""

    def __init__(self, dim):
        super().__init__(dim, 3 * dim)
        self.lora_A = nn.Parameter(torch.empty(2 * BOTTLENECK, dim))
        self.lora_B = nn.Parameter(torch.zeros(2 * dim, BOTTLENECK))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = 1.0 / BOTTLENECK
        self.merged = False

    def delta_weight(self):
        c = self.in_features
        dq = self.lora_B[:c] @ self.lora_A[:BOTTLENECK]
        dv = self.lora_B[c:] @ self.lora_A[BOTTLENECK:]
        return torch.cat([dq, torch.zeros_like(dq), dv]) * self.scaling

    def train(self, mode=True):
        super().train(mode)
        with torch.no_grad():
            if mode and self.merged:
                self.weight -= self.delta_weight()
                self.merged = False
            elif not mode and not self.merged:
                self.weight += self.delta_weight()
                self.merged = True
        return self

    def forward(self, x):
        out = F.linear(x, self.weight, self.bias)
        if self.merged:
            return out
        a = F.linear(x, self.lora_A)  # (..., 2r)
        dq = F.linear(a[..., :BOTTLENECK], self.lora_B[: self.in_features])
        dv = F.linear(a[..., BOTTLENECK:], self.lora_B[self.in_features:])
        return out + torch.cat([dq, torch.zeros_like(dq), dv], -1) * self.scaling


# ---------------------------------------------------------------------------------------
# Det-style Swin (spec §2)


def window_partition(x, w):
    b, h, wd, c = x.shape
    x = x.view(b, h // w, w, wd // w, w, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, w * w, c)


def window_reverse(windows, w, h, wd):
    b = windows.shape[0] // ((h // w) * (wd // w))
    x = windows.view(b, h // w, wd // w, w, w, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, wd, -1)


class WindowAttention(nn.Module):
    def __init__(self, dim, heads, window, lora):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(
            torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        index = rel[..., 0] * (2 * window - 1) + rel[..., 1]
        self.register_buffer("relative_position_index", index)
        self.qkv = LoraQkv(dim) if lora else nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask):
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + bias.view(n, n, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(bw // nw, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.heads, n, n)
        attn = attn.softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, window, shift, drop_path, method):
        super().__init__()
        self.window = window
        self.shift = shift
        self.method = method
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window, lora=method == "lora")
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim)
        if method == "mona":
            self.my_module_1, self.my_module_2 = Mona(dim), Mona(dim)
        elif method == "adapter":
            self.my_module_1, self.my_module_2 = Adapter(dim), Adapter(dim)
        elif method == "adaptformer":
            self.my_module_1 = AdaptFormer(dim)

    def forward(self, x, hw, mask):
        h, w = hw
        b, _, c = x.shape
        ws = self.window
        shortcut = x
        y = self.norm1(x).view(b, h, w, c)
        pad_r, pad_b = (ws - w % ws) % ws, (ws - h % ws) % ws
        y = F.pad(y, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        if self.shift > 0:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        else:
            mask = None
        y = self.attn(window_partition(y, ws), mask)
        y = window_reverse(y, ws, hp, wp)
        if self.shift > 0:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        y = y[:, :h, :w, :].contiguous().view(b, h * w, c)
        if self.method == "adapter":
            y = self.my_module_1(y)
        x = shortcut + self.drop_path(y)
        if self.method == "mona":
            x = self.my_module_1(x, hw)
        m = self.mlp(self.norm2(x))
        if self.method == "adapter":
            m = self.my_module_2(m)
        if self.method == "adaptformer":
            x = x + self.drop_path(m) + self.my_module_1(x)
        else:
            x = x + self.drop_path(m)
        if self.method == "mona":
            x = self.my_module_2(x, hw)
        return x


class PatchMerging(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x, hw):
        h, w = hw
        b, _, c = x.shape
        x = x.view(b, h, w, c)
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


def shift_mask(h, w, window, device):
    """Spec §2.3: the (nW, w², w²) mask of the padded grid, 0 or −100."""
    hp, wp = math.ceil(h / window) * window, math.ceil(w / window) * window
    s = window // 2
    img = torch.zeros((1, hp, wp, 1), device=device)
    cnt = 0
    for hs in (slice(0, -window), slice(-window, -s), slice(-s, None)):
        for ws in (slice(0, -window), slice(-window, -s), slice(-s, None)):
            img[:, hs, ws, :] = cnt
            cnt += 1
    win = window_partition(img, window).squeeze(-1)
    mask = win.unsqueeze(1) - win.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


class Stage(nn.Module):
    def __init__(self, dim, depth, heads, window, dprs, method, downsample):
        super().__init__()
        self.window = window
        self.blocks = nn.ModuleList(
            Block(dim, heads, window, 0 if j % 2 == 0 else window // 2, dprs[j], method)
            for j in range(depth))
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x, hw):
        mask = shift_mask(hw[0], hw[1], self.window, x.device)
        for blk in self.blocks:
            x = blk(x, hw, mask)
        if self.downsample is None:
            return x, hw, x, hw
        down_hw = ((hw[0] + 1) // 2, (hw[1] + 1) // 2)
        return x, hw, self.downsample(x, hw), down_hw


class PatchEmbed(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, 4, stride=4)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        h, w = x.shape[2:]
        if w % 4 or h % 4:
            x = F.pad(x, (0, (4 - w % 4) % 4, 0, (4 - h % 4) % 4))
        x = self.proj(x)
        hw = tuple(x.shape[2:])
        return self.norm(x.flatten(2).transpose(1, 2)), hw


class SwinBackbone(nn.Module):
    """Det-style Swin: a preset name or (embed_dim, depths, heads); returns norm{i} of each
    stage i in `out_indices` as B×C×H×W (the classifier uses out_indices (3,))."""

    def __init__(self, arch, method, window=WINDOW, out_indices=(3,),
                 drop_path_rate=DROP_PATH_RATE):
        super().__init__()
        dim, depths, heads = ARCHS[arch] if isinstance(arch, str) else arch
        self.patch_embed = PatchEmbed(dim)
        n = sum(depths)
        dprs = [drop_path_rate * k / max(n - 1, 1) for k in range(n)]  # linspace(0, rate, n)
        self.layers = nn.ModuleList()
        for i, depth in enumerate(depths):
            start = sum(depths[:i])
            self.layers.append(Stage(dim * 2**i, depth, heads[i], window,
                                     dprs[start:start + depth], method, downsample=i < 3))
        self.out_indices = tuple(out_indices)
        self.num_features = dim * 8
        for i in self.out_indices:
            self.add_module(f"norm{i}", nn.LayerNorm(dim * 2**i))
        self.init_weights()
        for name, p in self.named_parameters():
            p.requires_grad = backbone_trainable(method, name)

    def init_weights(self):
        """Spec §1.4: every Linear trunc-normal std 0.02 with zero bias, every LayerNorm
        1/0, the bias tables trunc-normal 0.02; convolutions keep PyTorch's default."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, WindowAttention):
                nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02)

    def forward(self, x):
        """The outputs of `out_indices`, in order."""
        x, hw = self.patch_embed(x)
        outs = []
        for i, stage in enumerate(self.layers):
            out, (h, w), x, hw = stage(x, hw)
            if i in self.out_indices:
                out = getattr(self, f"norm{i}")(out)
                outs.append(out.view(-1, h, w, out.shape[-1]).permute(0, 3, 1, 2).contiguous())
        return outs


class ImageClassifier(nn.Module):
    """mmcls ImageClassifier: backbone → GlobalAveragePooling → LinearClsHead (fc)."""

    def __init__(self, arch, method):
        super().__init__()
        self.backbone = SwinBackbone(arch, method)
        self.head = nn.Module()
        self.head.fc = nn.Linear(self.backbone.num_features, NUM_CLASSES)
        nn.init.normal_(self.head.fc.weight, std=0.01)
        nn.init.zeros_(self.head.fc.bias)

    def forward(self, x):
        feat = F.adaptive_avg_pool2d(self.backbone(x)[-1], 1).flatten(1)
        return self.head.fc(feat)


# ---------------------------------------------------------------------------------------
# Cases and timing

CASE_NAME = re.compile(r"^(swin_[tsbl])_(.+)_(train|infer)_b(\d+)_(\d+)_(fp32|bf16|cpu)$")


def parse_case(case):
    """A `bench --list` name or `ARCH:METHOD:train|infer:BATCH:SIZE[:bf16]`; returns
    (arch, method, train, batch, size, bf16)."""
    m = CASE_NAME.match(case)
    if m:
        arch, method, mode, batch, size, prec = m.groups()
        parts = [arch, method, mode, batch, size] + (["bf16"] if prec == "bf16" else [])
    else:
        parts = case.split(":")
    if not 5 <= len(parts) <= 6 or parts[2] not in ("train", "infer") \
            or (len(parts) == 6 and parts[5] not in ("bf16", "fp32")) \
            or not parts[3].isdigit() or not parts[4].isdigit():
        raise ValueError(f"case {case!r}: expected a bench name like "
                         "swin_t_mona_train_b2_224_cpu or ARCH:METHOD:train|infer:BATCH:SIZE[:bf16]")
    if parts[0] not in ARCHS:
        raise ValueError(f"case {case!r}: unknown arch {parts[0]} (known: {', '.join(ARCHS)})")
    if parts[1] not in METHODS:
        raise ValueError(f"case {case!r}: unknown method {parts[1]} (known: {', '.join(METHODS)})")
    return (parts[0], parts[1], parts[2] == "train", int(parts[3]), int(parts[4]),
            len(parts) == 6 and parts[5] == "bf16")


def count_params(model):
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


# Our `count-params` on Swin-T (det-style, out_indices [3], 1000-way head not included):
# backbone total and trainable per method, from
#   count-params swin_t_cls.toml --all-methods --json
# (arch swin_t, out_indices [3]). The head adds 768·1000 + 1000 = 769,000 to both.
OURS_SWIN_T_BACKBONE = {
    "mona": (28_927_482, 1_408_128),
    "adapter": (28_660_218, 1_140_864),
    "adaptformer": (28_089_786, 570_432),
    "lora": (28_649_850, 1_130_496),
    "bitfit": (27_519_354, 75_546),
    "norm_tuning": (27_519_354, 24_768),
    "partial_1": (27_519_354, 7_091_928),
    "fixed": (27_519_354, 0),
    "full": (27_519_354, 27_519_354),
}
HEAD_SWIN_T = 768 * NUM_CLASSES + NUM_CLASSES


def spec_added_swin_t(method):
    """What the method adds to Swin-T by the spec's per-block formulas (§3, §8)."""
    dims = [96] * 2 + [192] * 2 + [384] * 6 + [768] * 2
    per_block = {
        "mona": lambda c: 266 * c + 19_456,
        "adapter": lambda c: 2 * (129 * c + 64),
        "adaptformer": lambda c: 129 * c + 64,
        "lora": lambda c: 256 * c,
    }.get(method, lambda c: 0)
    return sum(per_block(c) for c in dims)


# Spec §3/§8 for the larger presets with out_indices (3,): the original backbone (no head)
# and what Mona adds.
SPEC_BACKBONE_OUT3 = {"swin_b": (86_743_224, 3_667_456), "swin_l": (194_995_476, 5_267_712)}


def check_param_counts():
    """Swin-T, every method, with the head: ours == PyTorch == spec. Swin-B/L with Mona,
    backbone only: PyTorch == spec. Built on the meta device (no memory, no init work)."""
    ok = True
    for method in METHODS:
        with torch.device("meta"):
            model = ImageClassifier("swin_t", method)
        total, trainable = count_params(model)
        b_total, b_train = OURS_SWIN_T_BACKBONE[method]
        ours = (b_total + HEAD_SWIN_T, b_train + HEAD_SWIN_T)
        # Swin-T with the 1000-way head is 28,288,354 parameters (the MS model's count).
        spec_total = 28_288_354 + spec_added_swin_t(method)
        good = (total, trainable) == ours and total == spec_total
        ok &= good
        print(json.dumps({"method": method, "arch": "swin_t", "head": NUM_CLASSES,
                          "pytorch_total": total, "pytorch_trainable": trainable,
                          "ours_total": ours[0], "ours_trainable": ours[1],
                          "spec_total": spec_total, "equal": good}))
    for arch, (original, mona) in SPEC_BACKBONE_OUT3.items():
        with torch.device("meta"):
            backbone = SwinBackbone(arch, "mona")
        total, trainable = count_params(backbone)
        good = (total, trainable) == (original + mona, mona)
        ok &= good
        print(json.dumps({"method": "mona", "arch": arch, "head": None,
                          "pytorch_total": total, "pytorch_trainable": trainable,
                          "spec_total": original + mona, "spec_trainable": mona,
                          "equal": good}))
    return ok


def peak_rss_mib():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_case(case, device, warmup, steps):
    arch, method, train, batch, size, bf16 = parse_case(case)
    torch.manual_seed(0)
    model = ImageClassifier(arch, method).to(device)
    total, trainable = count_params(model)
    images = torch.randn(batch, 3, size, size, device=device)
    labels = torch.arange(batch, device=device) % NUM_CLASSES
    dtype = torch.bfloat16 if bf16 else None
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    if train:
        model.train()
        optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=1e-4, weight_decay=0.05, eps=1e-8)

        def step():
            optim.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=dtype, enabled=bf16):
                logits = model(images)
            loss = F.cross_entropy(logits.float(), labels)
            loss.backward()
            optim.step()
    else:
        model.eval()

        def step():
            with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=bf16):
                model(images)

    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(warmup + steps):
        sync()
        t = time.perf_counter()
        step()
        sync()
        times.append(1000.0 * (time.perf_counter() - t))
    step_ms = times[warmup:]
    mean_ms = sum(step_ms) / max(len(step_ms), 1)
    result = {
        "case": case, "device": str(device), "arch": arch,
        "method": method, "train": train, "batch": batch, "size": size,
        "precision": "bf16" if bf16 else "fp32",
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "params_total": total, "params_trainable": trainable,
        "warmup_ms": times[:warmup], "step_ms": step_ms, "mean_ms": mean_ms,
        "median_ms": statistics.median(step_ms) if step_ms else None,
        "images_per_s": batch * 1000.0 / mean_ms if mean_ms else None,
        "peak_rss_mib": peak_rss_mib(),
    }
    if cuda:
        result["cuda_max_allocated_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        result["cuda_max_reserved_gib"] = torch.cuda.max_memory_reserved(device) / 2**30
        result["gpu"] = torch.cuda.get_device_name(device)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", action="append", default=[],
                    help="a bench case name or ARCH:METHOD:train|infer:BATCH:SIZE[:bf16]; repeatable")
    ap.add_argument("--warmup", type=int, default=3, help="untimed iterations first (default 3)")
    ap.add_argument("--steps", type=int, default=10, help="timed iterations (default 10)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads (default 2 on the CPU, PyTorch's own on CUDA)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    ap.add_argument("--count-params", action="store_true",
                    help="print and check the Swin-T parameter counts of every method, then exit")
    args = ap.parse_args(argv)
    if args.count_params:
        return 0 if check_param_counts() else 1
    if not args.case:
        ap.error("give at least one --case (or --count-params)")
    if args.warmup < 0 or args.steps < 1:
        ap.error("--warmup must be ≥ 0 and --steps ≥ 1")
    try:
        for case in args.case:
            parse_case(case)
    except ValueError as e:
        ap.error(str(e))
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: this torch has no CUDA device")
    threads = args.threads if args.threads is not None else (2 if device.type == "cpu" else None)
    if threads is not None:
        torch.set_num_threads(threads)
    for case in args.case:
        print(json.dumps(run_case(case, device, args.warmup, args.steps)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
