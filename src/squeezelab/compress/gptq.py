"""Error-compensating pruning and weight sharing of one layer, from its inputs' second moments.

Deep Compression (Han et al., 2016) prunes the smallest weights and snaps each kept weight to its
nearest k-means centroid, then retrains to win back what that cost. Without retraining, the
choice itself has to be good. For a layer y = W x, the change of its output over inputs X is
tr(dW H dW^T) with H = X X^T (im2col columns for a conv), so a weight's error can be paid back by
the weights of the same row that see correlated inputs. Optimal Brain Surgeon (Hassibi & Stork,
1993) gives the best correction for one weight; GPTQ (Frantar et al., 2023) and SparseGPT (Frantar
& Alistarh, 2023) apply it column by column with the Cholesky factor of H^-1, which is what
`share_weight` does, as Optimal Brain Compression (Frantar et al., 2022) joins pruning and
quantization:

1. columns are visited in blocks; at the start of each block, the weights of least saliency
   w^2 / [H^-1]_jj^2 (SparseGPT) are pruned so that the layer keeps its quota, and weights that
   were zero before stay zero;
2. each column is rounded to its nearest centroid of the layer's codebook (k-means of the kept
   weights, linear initialisation, as `compress.quantize`), and its error is spread over the
   columns not yet visited;
3. with the assignments fixed, the centroids are fitted again by least squares on the layer's
   output error (conjugate gradients: each step is one product with H), and the pass is repeated
   with the new codebook.

The result is a mask, an index and a codebook the codec stores as it stores k-means sharing, so
the file format does not change.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from squeezelab.compress.quantize import kmeans_1d

BLOCK = 128  # columns per lazy update (GPTQ's block size)
DAMPING = 0.01  # of the mean diagonal of H, added to it: H is singular where inputs are (dead channels)


@dataclasses.dataclass
class SharedLayer:
    """One layer's compressed weight: flat bool mask, flat index, sorted codebook, and its error."""

    mask: torch.Tensor
    index: torch.Tensor
    centroids: torch.Tensor
    error: float  # tr(dW H dW^T) / tr(W H W^T): relative change of the layer's output on its inputs

    def weight(self, shape) -> torch.Tensor:
        return torch.where(self.mask, self.centroids[self.index], torch.zeros(())).view(shape)


class Moments:
    """Running H = sum x x^T and sum x over the im2col columns a layer sees (float64)."""

    def __init__(self, module: nn.Module):
        self.module = module
        d = module.weight[0].numel() if isinstance(module, nn.Conv2d) and module.groups == 1 else module.weight.shape[-1]
        self.h = torch.zeros(d, d, dtype=torch.float64)
        self.sum = torch.zeros(d, dtype=torch.float64)
        self.count = 0

    def add(self, x: torch.Tensor) -> None:
        cols = input_columns(self.module, x.detach()).double()
        self.h += cols.T @ cols
        self.sum += cols.sum(0)
        self.count += cols.shape[0]

    @property
    def hessian(self) -> torch.Tensor:
        return self.h / max(1, self.count)

    @property
    def mean(self) -> torch.Tensor:
        return self.sum / max(1, self.count)


def input_columns(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(n, d) rows the layer's weight rows are multiplied with: im2col patches for a conv."""
    if isinstance(module, nn.Conv2d):
        cols = nn.functional.unfold(x, module.kernel_size, module.dilation, module.padding, module.stride)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])
    return x.reshape(-1, x.shape[-1])


def relative_error(weight: torch.Tensor, shared: torch.Tensor, hessian: torch.Tensor) -> float:
    """tr(dW H dW^T) / tr(W H W^T) for (rows, d) weights."""
    w, dw = weight.double(), (shared - weight).double()
    return float(((dw @ hessian) * dw).sum() / ((w @ hessian) * w).sum().clamp_min(1e-30))


def factor(hessian: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(damped H, upper Cholesky factor of its inverse, column order), both in that order: what
    every setting of a layer reuses. Columns of larger input energy go first (GPTQ's "act order"):
    their errors are then spread over the most columns still free."""
    h = _damped(hessian.double().clone())
    order = torch.argsort(torch.diag(h), descending=True)
    h = h[order][:, order]
    return h, torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True), order


def share_weight(weight: torch.Tensor, hessian: torch.Tensor, density_factor: float, bits: int, *,
                 refits: int = 1, factored: tuple | None = None) -> SharedLayer:
    """`weight` pruned to `density_factor` of its non-zeros and shared into 2**bits centroids,
    each choice compensated on `hessian` (see the module doc).

    >>> h = torch.eye(4, dtype=torch.float64)
    >>> s = share_weight(torch.tensor([[1.0, -1.0, 0.5, 0.0]]), h, 1.0, 2)
    >>> s.mask.tolist(), round(s.error, 6)
    ([True, True, True, False], 0.0)
    """
    shape = weight.shape
    h, u, order = factored or factor(hessian)
    w0 = weight.detach().reshape(shape[0], -1).double()[:, order]
    zero = w0 == 0  # pruned before: stays pruned
    nonzero = int((~zero).sum())
    keep = max(1, int(round(density_factor * nonzero)))
    prune_fraction = (nonzero - keep) / max(1, nonzero)  # of the weights not yet pruned, in every block
    saliency = (w0 ** 2) / torch.diag(u).pow(2).unsqueeze(0)
    first_mask = torch.zeros(w0.numel(), dtype=torch.bool)
    first_mask[torch.topk(saliency.masked_fill(zero, -1.0).flatten(), keep).indices] = True
    centroids, _ = kmeans_1d(w0.flatten()[first_mask].float(), 2 ** bits)
    centroids = centroids.double()
    for attempt in range(refits + 1):
        mask, index, _values = _pass(w0, u, zero, prune_fraction, centroids)
        centroids = _refit(w0, h, mask, index, centroids)  # for these assignments: may leave sorted order
        if attempt < refits:
            centroids = torch.sort(centroids).values  # the next pass's nearest-centroid search needs it
    shared = torch.where(mask, centroids[index], torch.zeros((), dtype=torch.float64))
    error = relative_error(w0, shared, hessian.double()[order][:, order])
    back = torch.argsort(order)
    return SharedLayer(mask[:, back].flatten(), index[:, back].flatten(), centroids.float(), error)


def _damped(h: torch.Tensor) -> torch.Tensor:
    """H plus a small multiple of its mean diagonal: invertible where inputs are always zero (a
    dead channel, a 3x3 tap over padding), where a weight then costs almost nothing to prune."""
    h += DAMPING * (float(torch.diag(h).mean()) or 1.0) * torch.eye(len(h), dtype=h.dtype)
    return h


def _nearest(values: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    return torch.bucketize(values, (centroids[1:] + centroids[:-1]) / 2)


def prune_weight(weight: torch.Tensor, hessian: torch.Tensor, density_factor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """`weight` pruned to `density_factor` of its non-zeros with the kept weights compensating
    (SparseGPT, no rounding): (new weight, bool mask), both shaped as `weight`.

    >>> w, m = prune_weight(torch.tensor([[1.0, 0.1, -2.0]]), torch.eye(3, dtype=torch.float64), 0.67)
    >>> m.tolist()
    [[True, False, True]]
    """
    _h, u, order = factor(hessian)
    w0 = weight.detach().reshape(weight.shape[0], -1).double()[:, order]
    zero = w0 == 0
    nonzero = int((~zero).sum())
    keep = max(1, int(round(density_factor * nonzero)))
    mask, _index, values = _pass(w0, u, zero, (nonzero - keep) / max(1, nonzero), None)
    back = torch.argsort(order)
    return values[:, back].to(weight.dtype).view(weight.shape), mask[:, back].view(weight.shape)


def _pass(w0: torch.Tensor, u: torch.Tensor, zero: torch.Tensor, prune_fraction: float,
          centroids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One GPTQ/SparseGPT pass over the columns: (mask, index, compensated values before rounding),
    all (rows, d); without `centroids` nothing is rounded (pruning alone)."""
    w = w0.clone()
    rows, d = w.shape
    mask = torch.zeros_like(w, dtype=torch.bool)
    index = torch.zeros_like(w, dtype=torch.long)
    values = torch.zeros_like(w)
    for i1 in range(0, d, BLOCK):
        i2 = min(i1 + BLOCK, d)
        block, ublock = w[:, i1:i2].clone(), u[i1:i2, i1:i2]
        errors = torch.zeros_like(block)
        was_zero = zero[:, i1:i2]
        saliency = (block ** 2 / torch.diag(ublock).pow(2).unsqueeze(0)).masked_fill(was_zero, float("inf"))
        prune = int(round(prune_fraction * int((~was_zero).sum())))
        pruned = was_zero.clone()
        if prune:
            pruned.view(-1)[torch.topk(saliency.flatten(), prune, largest=False).indices] = True
        block_t = block.T.contiguous()  # columns as contiguous rows
        for j in range(i2 - i1):
            column = block_t[j]
            if centroids is None:
                idx, kept = None, column.clone()
            else:
                idx = _nearest(column, centroids)
                kept = centroids[idx]
                index[:, i1 + j] = idx
            q = torch.where(pruned[:, j], torch.zeros((), dtype=column.dtype), kept)
            values[:, i1 + j] = q
            err = (column - q) / ublock[j, j]
            block_t[j:] -= ublock[j, j:].unsqueeze(1) * err.unsqueeze(0)
            errors[:, j] = err
        mask[:, i1:i2] = ~pruned
        w[:, i2:] -= errors @ u[i1:i2, i2:]
    return mask, torch.where(mask, index, torch.zeros((), dtype=torch.long)), values


def _refit(w0: torch.Tensor, h: torch.Tensor, mask: torch.Tensor, index: torch.Tensor, centroids: torch.Tensor,
           steps: int = 30) -> torch.Tensor:
    """The codebook minimising tr((Q(c) - W) H (Q(c) - W)^T) for fixed assignments, by conjugate
    gradients on its normal equations G c = b; centroids no weight uses keep their value."""
    k = len(centroids)
    kept = mask.flatten().nonzero().squeeze(1)
    kept_index = index.flatten()[kept]

    def gather(c):  # Q(c)
        return torch.zeros(w0.numel(), dtype=c.dtype).index_copy_(0, kept, c[kept_index]).view_as(w0)

    def scatter(m):  # the adjoint of Q: per centroid, the sum over its weights
        return torch.bincount(kept_index, m.flatten()[kept], minlength=k)

    used = torch.bincount(kept_index, minlength=k) > 0
    b = scatter(w0 @ h)
    c = centroids.clone()
    r = torch.where(used, b - scatter(gather(c) @ h), torch.zeros(()))
    p, rr = r.clone(), float(r @ r)
    tolerance = 1e-10 * rr
    for _ in range(steps):
        if rr <= tolerance:
            break
        gp = torch.where(used, scatter(gather(p) @ h), torch.zeros(()))
        alpha = rr / max(float(p @ gp), 1e-30)
        c += alpha * p
        r -= alpha * gp
        rr, rr_old = float(r @ r), rr
        p = r + (rr / rr_old) * p
    return c
