"""Mobile-Former encoders of the QB-Heat Workbench in plain PyTorch, named like the workbench's
safetensors export (`workbench export RUN`), so that

    import json, torch
    from safetensors.torch import load_file          # or: load_safetensors below (no extra package)
    from mobile_former import MobileFormer, load_safetensors
    manifest = json.load(open("exports/RUN.json"))
    model = MobileFormer.from_manifest(manifest)
    model.load_state_dict(load_safetensors("exports/RUN.safetensors"), strict=True)
    model.eval()
    features, tokens = model(x)            # x normalised with manifest["normalisation"]
    pooled = model.pooled(x)               # what the workbench's probes read

mirrors src/model/mobile_former.rs module for module (stem, bneck-lite, blocks of
Mobile->Former / Former / dynamic-ReLU MobileNet block / Former->Mobile, head). Needs only
torch (and json/struct from the standard library).
"""
import json
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

# The presets of src/spec/preset.rs (Tab. 8; mf-tiny and mf-micro are the workbench's small
# ones). A manifest's "architecture" is the authority; this table is for building by name.
PRESETS = {
    "mf-285m": dict(stem=16, lite_expand=32, lite_out=16,
                    blocks=[[96, 28, 2], [84, 28, 1], [168, 48, 2], [144, 48, 1], [144, 48, 1], [240, 80, 2],
                            [320, 88, 1], [480, 88, 1], [528, 120, 1], [720, 120, 1], [720, 120, 1]],
                    tokens=6, token_dim=192, wide=720, ffn_ratio=1, dyrelu_reduction=8),
    "mf-1.0g": dict(stem=32, lite_expand=64, lite_out=32,
                    blocks=[[192, 56, 2], [168, 56, 1], [336, 96, 2], [288, 96, 1], [288, 96, 1], [288, 96, 2],
                            [704, 176, 1], [704, 176, 1], [1056, 240, 1], [1440, 240, 1], [1440, 240, 1]],
                    tokens=6, token_dim=256, wide=1440, ffn_ratio=1, dyrelu_reduction=8),
    "mf-3.7g": dict(stem=64, lite_expand=128, lite_out=64,
                    blocks=[[384, 112, 2], [336, 112, 1], [672, 192, 2], [576, 192, 1], [576, 192, 1], [1152, 352, 2],
                            [1408, 352, 1], [1408, 352, 1], [2112, 480, 1], [2880, 480, 1], [2880, 480, 1]],
                    tokens=6, token_dim=256, wide=2880, ffn_ratio=1, dyrelu_reduction=8),
    "mf-tiny": dict(stem=16, lite_expand=16, lite_out=16,
                    blocks=[[64, 24, 2], [72, 24, 1], [96, 40, 2], [120, 40, 1]],
                    tokens=6, token_dim=96, wide=192, ffn_ratio=2, dyrelu_reduction=4),
    "mf-micro": dict(stem=16, lite_expand=16, lite_out=16, blocks=[[48, 24, 2], [72, 24, 1]],
                     tokens=6, token_dim=64, wide=128, ffn_ratio=2, dyrelu_reduction=4),
}
BRIDGE_HEADS = 2
BN_EPS = 1e-5
LN_EPS = 1e-6


def load_safetensors(path):
    """A safetensors file (F32 tensors) as a state dict, without the `safetensors` package."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {info['dtype']}, expected F32")
        a, b = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(body[a:b]), dtype=torch.float32).reshape(info["shape"])
    return out


class ConvBn(nn.Module):
    """ConvBn: k x k conv (no bias, padding k/2; depthwise: groups = c_in) + BatchNorm."""

    def __init__(self, c_in, c_out, k, stride, depthwise):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=c_in if depthwise else 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS)

    def forward(self, x):
        return self.bn(self.conv(x))


class PointwiseBn(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS)

    def forward(self, x):
        return self.bn(self.conv(x))


def split_heads(x, heads):  # [b, l, h*hd] -> [b, h, l, hd]
    b, l, d = x.shape
    return x.reshape(b, l, heads, d // heads).transpose(1, 2)


def merge_heads(x):  # [b, h, l, hd] -> [b, l, h*hd]
    b, h, l, hd = x.shape
    return x.transpose(1, 2).reshape(b, l, h * hd)


def pixel_heads(x):  # [n, c, h, w] -> [n, heads, h*w, c/heads]
    n, c, h, w = x.shape
    return x.reshape(n, BRIDGE_HEADS, c // BRIDGE_HEADS, h * w).transpose(2, 3)


def attention(q, k, v):
    """softmax(QK^T / sqrt(d)) V per head."""
    return torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1) @ v


class SelfAttention(nn.Module):
    """Fused qkv projection (Q, K, V side by side), heads, proj."""

    def __init__(self, dim, heads):
        super().__init__()
        self.qkv, self.proj, self.heads = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim), heads

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        h = self.heads
        return self.proj(merge_heads(attention(split_heads(q, h), split_heads(k, h), split_heads(v, h))))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class Former(nn.Module):
    """Post-LN transformer over the tokens."""

    def __init__(self, d, ffn_ratio):
        super().__init__()
        heads = 4 if d % 4 == 0 else 2
        self.attn, self.norm1 = SelfAttention(d, heads), nn.LayerNorm(d, eps=LN_EPS)
        self.ffn, self.norm2 = Mlp(d, ffn_ratio * d), nn.LayerNorm(d, eps=LN_EPS)

    def forward(self, z):
        z = self.norm1(z + self.attn(z))
        return self.norm2(z + self.ffn(z))


class DynamicRelu(nn.Module):
    """DY-ReLU-B coefficients from token 0: logits [n, 8C] = two sets of (da1, db1, da2, db2),
    each C wide; d = 2 sigmoid(l) - 1; y = max(a1 x + b1, a2 x + b2) with a1 = 1 + da1,
    b1 = db1 / 2, a2 = da2, b2 = db2 / 2."""

    def __init__(self, token_dim, reduction, channels):
        super().__init__()
        hidden = max(token_dim // max(reduction, 1), 8)
        self.fc1, self.fc2 = nn.Linear(token_dim, hidden), nn.Linear(hidden, 8 * channels)

    def coefficients(self, t0):
        return self.fc2(F.relu(self.fc1(t0)))

    @staticmethod
    def apply(x, logits, s):
        n, c = x.shape[:2]
        d = (2.0 * torch.sigmoid(logits) - 1.0).view(n, 8, c, 1, 1)
        a1, b1, a2, b2 = 1.0 + d[:, 4 * s], 0.5 * d[:, 4 * s + 1], d[:, 4 * s + 2], 0.5 * d[:, 4 * s + 3]
        return torch.maximum(a1 * x + b1, a2 * x + b2)


class MobileToFormer(nn.Module):
    """Tokens attend to pixels: Q = z W_q, K = V = x; residual into z."""

    def __init__(self, d, c):
        super().__init__()
        self.q, self.o = nn.Linear(d, c), nn.Linear(c, d)

    def forward(self, x, z):
        kv = pixel_heads(x)
        return z + self.o(merge_heads(attention(split_heads(self.q(z), BRIDGE_HEADS), kv, kv)))


class FormerToMobile(nn.Module):
    """Pixels attend to tokens: Q = x, K = z W_k, V = z W_v; residual into x."""

    def __init__(self, d, c):
        super().__init__()
        self.k, self.v = nn.Linear(d, c), nn.Linear(d, c)

    def forward(self, x, z):
        n, c, h, w = x.shape
        o = attention(pixel_heads(x), split_heads(self.k(z), BRIDGE_HEADS), split_heads(self.v(z), BRIDGE_HEADS))
        return x + o.transpose(2, 3).reshape(n, c, h, w)


class MobileFormerBlock(nn.Module):
    def __init__(self, c_in, expand, out, stride, arch):
        super().__init__()
        d = arch["token_dim"]
        self.m2f = MobileToFormer(d, c_in)
        self.former = Former(d, arch["ffn_ratio"])
        self.dyrelu = DynamicRelu(d, arch["dyrelu_reduction"], expand)
        self.expand = PointwiseBn(c_in, expand)
        self.depthwise = ConvBn(expand, expand, 3, stride, True)
        self.project = PointwiseBn(expand, out)
        self.f2m = FormerToMobile(d, out)
        self.residual = stride == 1 and c_in == out

    def forward(self, x, z):
        z = self.former(self.m2f(x, z))
        coef = self.dyrelu.coefficients(z[:, 0])
        y = DynamicRelu.apply(self.expand(x), coef, 0)
        y = DynamicRelu.apply(self.depthwise(y), coef, 1)
        y = self.project(y)
        if self.residual:
            y = y + x
        return self.f2m(y, z), z


class MobileFormer(nn.Module):
    def __init__(self, arch, in_channels=3):
        super().__init__()
        self.stem = ConvBn(in_channels, arch["stem"], 3, 2, False)
        self.lite_dw = ConvBn(arch["stem"], arch["lite_expand"], 3, 1, True)
        self.lite_pw = PointwiseBn(arch["lite_expand"], arch["lite_out"])
        self.tokens = nn.Parameter(torch.zeros(arch["tokens"], arch["token_dim"]))
        blocks, c = [], arch["lite_out"]
        for e, o, s in arch["blocks"]:
            blocks.append(MobileFormerBlock(c, e, o, s, arch))
            c = o
        self.blocks = nn.ModuleList(blocks)
        self.head = PointwiseBn(c, arch["wide"])

    @staticmethod
    def from_manifest(manifest):
        """The encoder a `workbench export` manifest describes (weights not loaded)."""
        return MobileFormer(manifest["architecture"], manifest["channels"])

    @staticmethod
    def preset(name, in_channels=3):
        return MobileFormer(PRESETS[name], in_channels)

    def forward(self, images):
        """(feature map [n, wide, h, w], tokens [n, m, d])."""
        n = images.shape[0]
        x = F.relu(self.stem(images))
        y = self.lite_pw(F.relu(self.lite_dw(x)))
        x = y + x if y.shape == x.shape else y
        z = self.tokens.unsqueeze(0).expand(n, -1, -1)
        for b in self.blocks:
            x, z = b(x, z)
        return F.relu(self.head(x)), z

    def pooled(self, images):
        """The probes' features: concat(average of the feature map, token 0)."""
        features, tokens = self(images)
        return torch.cat([features.mean(dim=(2, 3)), tokens[:, 0]], dim=1)
