"""Data-parallel training (fusiondsl.models.distributed): two gloo processes give the
single-process gradient of the joined batch; an interrupted fit resumes to the same weights."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fusiondsl.models.checkpoints import build_model
from fusiondsl.models.data import Structure, collate
from fusiondsl.models.distributed import World, share_of_batch
from fusiondsl.models.fitting import Trainer, fit
from fusiondsl.models.loss import batch_loss, fit_references

CUTOFF = 3.0
WEIGHTS = {"energy_weight": 1.0, "force_weight": 100.0}
# uneven shares (3 and 2 structures of different sizes), then a batch smaller than the world
BATCHES = ([0, 1, 2, 3, 4], [5])


def structures() -> list[Structure]:
    """Small molecules of 3 to 6 atoms with arbitrary labels (gradients only need numbers)."""
    rng = np.random.default_rng(7)
    out = []
    for n in (3, 6, 4, 5, 3, 6):
        out.append(Structure(rng.choice([1, 6, 8], size=n), rng.normal(scale=1.0, size=(n, 3)),
                             float(rng.normal()), rng.normal(size=(n, 3))))
    return out


def trainer(data: list[Structure], lr: float = 0.0) -> Trainer:
    torch.manual_seed(0)
    model = build_model("mofd", [1, 6, 8], channels=2, lmax=1, num_layers=1,
                        cutoff=CUTOFF).double()
    fit_references(model, data)
    return Trainer(model, data, [], batch_size=len(data), cutoff=CUTOFF, seed=0,
                   dtype=torch.float64, lr=lr, max_grad_norm=None, weights=WEIGHTS)


def steps(data: list[Structure]) -> list[tuple[float, list[torch.Tensor]]]:
    """Loss and gradients of one step per batch of BATCHES (lr 0: the weights stay put)."""
    t = trainer(data)
    out = []
    for batch in BATCHES:
        loss = t.step([data[i] for i in batch])
        out.append((loss, [p.grad.clone() for p in t.model.parameters()]))
    return out


def worker(rank: int, port: int, folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        torch.save(steps(structures()), f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_average_to_the_single_process_gradient(tmp_path):
    mp.spawn(worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    single = steps(structures())
    for rank in (0, 1):
        shared = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for (loss, grads), (loss1, grads1) in zip(shared, single):
            assert loss == pytest.approx(loss1, rel=1e-12)
            assert any(bool(g.abs().max() > 0) for g in grads1)
            for g, g1 in zip(grads, grads1):
                torch.testing.assert_close(g, g1, rtol=1e-10, atol=1e-13)


def test_the_shares_losses_add_up_to_the_batch_loss():
    data = structures()[:5]
    model = trainer(data).model
    whole = batch_loss(model, collate(data, CUTOFF), **WEIGHTS)
    totals = (len(data), sum(len(s.numbers) for s in data))
    parts = []
    for rank in range(3):
        mine, weight = share_of_batch(data, World(rank, 3, rank))
        parts.append(weight * batch_loss(model, collate(mine, CUTOFF), totals=totals, **WEIGHTS))
    assert float(sum(parts).detach()) == pytest.approx(float(whole.detach()), rel=1e-12)
    assert share_of_batch(data[:1], World(1, 2, 1)) == ([data[0]], 0.0)


def test_an_interrupted_fit_resumes_to_the_same_weights_and_history(tmp_path):
    data = structures()
    kwargs = {"epochs": 3, "batch_size": 2, "lr": 1e-2, "cutoff": CUTOFF, "progress": False}
    straight = trainer(data).model
    fit(straight, data[:4], data[4:], **kwargs)
    state = tmp_path / "mofd.state.pt"
    first = trainer(data).model
    fit(first, data[:4], data[4:], **{**kwargs, "epochs": 1}, state_path=state)
    resumed = trainer(data).model
    history = fit(resumed, data[:4], data[4:], **kwargs, state_path=state, resume=True)
    assert [r.epoch for r in history.records] == [1, 2, 3]
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)
