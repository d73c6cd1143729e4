"""MultiFold (OmniFold on a fixed set of observables) in torch, deterministic on the CPU.

Per iteration: step 1 trains a classifier between the simulation at detector level (weighted by the current
push weights) and the data, giving the pull weights; step 2 trains a classifier between the simulation at
particle level with the prior weights and with the pull weights, giving the new push weights (relative to the
prior). Events outside the detector-level (particle-level) selection keep their weight through step 1
(step 2). Classes are balanced for training and the class-sum ratio restores the absolute normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["NetworkConfig", "Standardiser", "UnfoldingInputs", "multifold", "set_determinism"]


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture and training settings of every classifier."""

    hidden: tuple[int, ...] = (64, 64)
    epochs: int = 12
    batch_size: int = 256
    learning_rate: float = 0.002
    logit_clip: float = 8.0


@dataclass(frozen=True)
class Standardiser:
    """Per-feature mean and standard deviation (the networks' preprocessing, stored with the ONNX models)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardiser:
        std = x.std(axis=0)
        return cls(x.mean(axis=0), np.where(std > 0, std, 1.0))


@dataclass(frozen=True)
class UnfoldingInputs:
    """Everything one unfolding needs; rows of the ``sim_*`` arrays are the same simulated events."""

    sim_reco: np.ndarray     # (n_sim, n_features) detector level
    sim_truth: np.ndarray    # (n_sim, n_features) particle level
    sim_pass_reco: np.ndarray
    sim_pass_truth: np.ndarray
    sim_weight: np.ndarray   # prior weights (weight_mc, possibly times bootstrap factors)
    data_reco: np.ndarray    # (n_data_pass, n_features) detector level, selected events only
    data_weight: np.ndarray
    reco_scaler: Standardiser
    truth_scaler: Standardiser


def set_determinism(threads: int) -> None:
    """Fixed threads, deterministic kernels (call before any training)."""
    import os

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    torch.set_num_threads(max(1, threads))
    torch.use_deterministic_algorithms(True)


def build_network(n_features: int, config: NetworkConfig) -> Any:
    """The classifier MLP (logit output)."""
    import torch

    layers: list[Any] = []
    width = n_features
    for h in config.hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.GELU()]
        width = h
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


def _train(x0: np.ndarray, w0: np.ndarray, x1: np.ndarray, w1: np.ndarray, *, seed: int,
           config: NetworkConfig, device: str) -> tuple[Any, float]:
    """Train class 1 vs class 0; returns the network and the class-sum ratio sum(w1)/sum(w0)."""
    import torch

    torch.manual_seed(seed)
    net = build_network(x0.shape[1], config).to(device)
    s0, s1 = float(w0.sum()), float(w1.sum())
    x = torch.from_numpy(np.concatenate([x0, x1]).astype(np.float32))
    y = torch.from_numpy(np.concatenate([np.zeros(len(x0)), np.ones(len(x1))]).astype(np.float32))
    # balanced classes, mean weight 1
    n = len(x0) + len(x1)
    w = np.concatenate([w0 / s0, w1 / s1]) * (n / 2.0)
    wt = torch.from_numpy(w.astype(np.float32))
    x, y, wt = x.to(device), y.to(device), wt.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    gen = torch.Generator().manual_seed(seed + 1)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    net.train()
    for _ in range(config.epochs):
        perm = torch.randperm(n, generator=gen).to(device)
        for start in range(0, n, config.batch_size):
            idx = perm[start:start + config.batch_size]
            opt.zero_grad()
            loss = (loss_fn(net(x[idx]).squeeze(1), y[idx]) * wt[idx]).mean()
            loss.backward()
            opt.step()
    net.eval()
    return net, s1 / s0


def _ratio(net: Any, x: np.ndarray, norm: float, config: NetworkConfig, device: str) -> np.ndarray:
    import torch

    with torch.no_grad():
        logit = net(torch.from_numpy(x.astype(np.float32)).to(device)).squeeze(1)
        logit = torch.clamp(logit, -config.logit_clip, config.logit_clip)
        out = torch.exp(logit).double().cpu().numpy() * norm
    return np.asarray(out)


def multifold(inputs: UnfoldingInputs, *, iterations: int, seed: int, config: NetworkConfig,
              device: str = "cpu") -> tuple[np.ndarray, Any, float]:
    """Run MultiFold; returns the push weights (relative to the prior, per simulated event), the final step-2
    network and its class-sum ratio (so that weight = exp(logit) * ratio)."""
    reco = ((inputs.sim_reco - inputs.reco_scaler.mean) / inputs.reco_scaler.std).astype(np.float32)
    truth = ((inputs.sim_truth - inputs.truth_scaler.mean) / inputs.truth_scaler.std).astype(np.float32)
    data = ((inputs.data_reco - inputs.reco_scaler.mean) / inputs.reco_scaler.std).astype(np.float32)
    pr, pt = inputs.sim_pass_reco, inputs.sim_pass_truth
    w = inputs.sim_weight.astype(np.float64)
    keep_r = pr & (w > 0)
    keep_t = pt & (w > 0)
    nu = np.ones(len(w))
    net2: Any = None
    norm2 = 1.0
    for it in range(iterations):
        net1, norm1 = _train(reco[keep_r], (w * nu)[keep_r], data, inputs.data_weight, seed=seed * 1000 + 10 * it + 1,
                             config=config, device=device)
        omega = nu.copy()
        omega[pr] = nu[pr] * _ratio(net1, reco[pr], norm1, config, device)
        net2, norm2 = _train(truth[keep_t], w[keep_t], truth[keep_t], (w * omega)[keep_t],
                             seed=seed * 1000 + 10 * it + 2, config=config, device=device)
        nu = omega.copy()
        nu[pt] = _ratio(net2, truth[pt], norm2, config, device)
    return nu, net2, norm2
