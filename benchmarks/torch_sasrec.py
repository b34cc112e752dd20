"""The PyTorch twin of tinyhydra's SASRec / HydraRecUni, for benchmarks/train_step.py.

PyTorch is optional: nothing imports ``torch`` until :func:`torch_setup` finds it
installed, so the benchmarks run without it. The twin is the same model layer for
layer (see :func:`torch_model`), timed on the same batches as tinyhydra.
"""
from __future__ import annotations

import math
import os


def torch_model(cfg, kind: str, device: str):
    """The same SASRec in PyTorch eager mode, layer for layer (see tinyhydra.rec.models / nn).

    Embedding E (V + 1, D) scaled by sqrt(D) + right-aligned learned positions,
    dropout, times the key mask; ``layers`` pre-LN blocks
    x = x + drop(attn(LN(x))), x = x + drop(ffn(LN(x))), x *= mask, where attn is
    Q, K, V projections, softmax (explicit matmul + masked softmax, causal AND key
    mask; masked scores get -1e9 so a fully padded row stays finite) or Hydra
    (cosine-normalised q, k, masked k, cumsum over t), dropout on the context, output
    projection; ffn = Linear -> ReLU -> dropout -> Linear (hidden D); final LayerNorm;
    logits of the target rows against E[1:] (tied), full-softmax CE; Adam.
    Parameter names are tinyhydra's, so ``model.load_state_dict`` of a tinyhydra
    ``state_dict()`` (as torch tensors) gives the same function (tests check the loss).
    """
    import torch
    from torch import nn
    from torch.nn import functional as TF

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.query, self.key, self.value, self.out = (nn.Linear(cfg.dim, cfg.dim)
                                                          for _ in range(4))
            self.dropout = nn.Dropout(cfg.dropout)

        def forward(self, x, mask):  # x (B, L, D), mask (B, L) bool
            q, k, v = self.query(x), self.key(x), self.value(x)
            if kind == "hydra":
                q = TF.normalize(q, dim=-1)
                k = TF.normalize(k, dim=-1) * mask[:, :, None]
                context = q * torch.cumsum(k * v, dim=1)
            else:
                b, length, d = x.shape
                h = cfg.heads or 1  # 0: SASRec's one head
                q, k, v = (t.reshape(b, length, h, d // h).transpose(1, 2) for t in (q, k, v))
                scores = q @ k.transpose(-1, -2) / math.sqrt(d // h)  # (B, H, L, L)
                tril = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
                allowed = tril & mask[:, None, None, :]
                scores = scores.masked_fill(~allowed, -1e9)
                context = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, length, d)
            return self.out(self.dropout(context))

    class FeedForward(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(cfg.dim, cfg.dim), nn.Linear(cfg.dim, cfg.dim)
            self.dropout = nn.Dropout(cfg.dropout)

        def forward(self, x):
            return self.fc2(self.dropout(torch.relu(self.fc1(x))))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = Attention()
            self.attention_norm, self.feed_forward_norm = nn.LayerNorm(cfg.dim), nn.LayerNorm(cfg.dim)
            self.feed_forward = FeedForward()
            self.attention_dropout = nn.Dropout(cfg.dropout)
            self.feed_forward_dropout = nn.Dropout(cfg.dropout)

        def forward(self, x, mask):
            x = x + self.attention_dropout(self.attention(self.attention_norm(x), mask))
            x = x + self.feed_forward_dropout(self.feed_forward(self.feed_forward_norm(x)))
            return x * mask[:, :, None]

    class TorchSASRec(nn.Module):
        def __init__(self):
            super().__init__()
            self.item_embedding = nn.Embedding(cfg.num_items + 1, cfg.dim, padding_idx=0)
            self.position_embedding = nn.Embedding(cfg.seq_len, cfg.dim)
            nn.init.normal_(self.item_embedding.weight, std=0.02)
            nn.init.normal_(self.position_embedding.weight, std=0.02)
            with torch.no_grad():
                self.item_embedding.weight[0] = 0
            self.dropout = nn.Dropout(cfg.dropout)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.layers))
            self.final_norm = nn.LayerNorm(cfg.dim)

        def loss(self, inputs, targets):
            mask = inputs != 0
            length = inputs.shape[1]
            x = self.item_embedding(inputs) * math.sqrt(cfg.dim)
            x = self.dropout(x + self.position_embedding.weight[cfg.seq_len - length:])
            x = x * mask[:, :, None]
            for block in self.blocks:
                x = block(x, mask)
            hidden = self.final_norm(x).reshape(-1, cfg.dim)
            flat = targets.reshape(-1)
            rows = torch.nonzero(flat).squeeze(1)
            logits = hidden[rows] @ self.item_embedding.weight[1:cfg.num_items + 1].T
            return TF.cross_entropy(logits, flat[rows] - 1)

    torch_device = "cuda" if device == "gpu" else "cpu"
    model = TorchSASRec().to(torch_device)
    return model, torch.optim.Adam(model.parameters(), lr=cfg.lr), torch_device


TWIN_KINDS = ("softmax", "hydra")  # the attention kinds the PyTorch twin has


def torch_setup(cfg) -> dict:
    """Whether and how PyTorch runs: {"run": bool, "reason": str, "kinds": the kinds of
    ``cfg.kinds`` it has a twin of, ...}."""
    if not cfg.torch:
        return {"run": False, "reason": "disabled (--no-torch, or --quick without --torch)"}
    try:
        import torch
    except ImportError:
        return {"run": False, "reason": "PyTorch is not installed (it is not a dependency)"}
    if cfg.loss != "ce":
        return {"run": False, "reason": f"the PyTorch twin implements --loss ce only, not {cfg.loss}"}
    if cfg.device == "gpu" and not torch.cuda.is_available():
        return {"run": False, "reason": "--device gpu but torch.cuda.is_available() is False"}
    kinds = [kind for kind in cfg.kinds if kind in TWIN_KINDS]
    if not kinds:
        return {"run": False, "reason": f"the PyTorch twin has {' and '.join(TWIN_KINDS)} attention only"}
    threads = cfg.threads or os.cpu_count()
    torch.set_num_threads(threads)
    return {"run": True, "reason": "", "version": torch.__version__, "threads": threads, "kinds": kinds}


def torch_step(model, optimizer, torch_device):
    import torch

    def step(batch):
        inputs = torch.from_numpy(batch.inputs).to(torch_device)
        targets = torch.from_numpy(batch.targets).to(torch_device)
        optimizer.zero_grad(set_to_none=True)
        model.loss(inputs, targets).backward()
        optimizer.step()
        return None
    return step


def torch_sync(torch_device):
    if torch_device == "cuda":
        import torch
        torch.cuda.synchronize()
