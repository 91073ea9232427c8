"""Data-parallel training under `torchrun`: the same `chatapp train` command, N processes.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; `init_distributed` joins the process group
(NCCL on CUDA, gloo on CPU). Every rank builds the same model and the same blocks, and the
DistributedTrainer splits each global micro-batch between the ranks: the trainer draws the
same seeded permutation everywhere, and rank r takes the r-th slice of each batch of
`batch_size` indices (as DistributedSampler, but per step, so the global batch, the data order
and the arithmetic are those of one process running `--batch-size` blocks per micro-batch).
DDP averages gradients; each rank scales its loss sum by world_size / (global target count),
so the averaged gradient is the single-process gradient of the token-weighted mean loss.

Rank 0 alone writes checkpoints, adapters, exported models and progress lines. A cancel on any
rank (SIGTERM from torchrun, Ctrl-C) is agreed on by all at the next step, so no rank waits
forever in a collective that another rank will never join.

With `--strategy fsdp` the ShardedTrainer shards instead of copying: FSDP2's fully_shard puts
each transformer block (and the rest of the model) in one group whose parameters, gradients
and optimizer state are split between the ranks and gathered only for the block being
computed, so a model that does not fit one process's memory can still be trained. The data
split and the arithmetic are those of the DistributedTrainer; checkpoints and outputs are
gathered to whole tensors on rank 0, in the same files.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .dataset import IGNORE_INDEX
from .trainer import Trainer, _autocast, _token_loss_sum

log = logging.getLogger(__name__)


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: Optional[str] = None  # None: a single process, no process group

    @property
    def enabled(self) -> bool:
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sum over ranks (float64; identity in a single process)."""
        if not self.enabled:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def any(self, flag: bool, device: torch.device) -> bool:
        return self.sum([1.0 if flag else 0.0], device)[0] > 0

    def close(self, synchronize: bool = False) -> None:
        """Leave the process group. `synchronize` (after a run every rank finished): wait for all
        ranks first, so no collective is in flight when the group goes."""
        if self.enabled and dist.is_initialized():
            if synchronize:
                try:
                    dist.barrier()
                except RuntimeError as exc:  # another rank failed and left: nothing left to wait for
                    log.warning("ranks did not meet before leaving the process group: %s", exc)
            # The sharded model's tensors (kept alive by reference cycles through FSDP's hooks)
            # hold the process group: free them now, while the interpreter is whole, rather than
            # during its shutdown, where tearing down gloo's threads can abort the process.
            gc.collect()
            dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistContext:
    """Join torchrun's process group when WORLD_SIZE > 1; a single-process context otherwise."""
    if not launched_by_torchrun():
        return DistContext()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local)  # "cuda" now means this rank's GPU
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    log.info("rank %d of %d (local %d) joined the %s process group", rank, world, local, backend)
    return DistContext(rank=rank, world_size=world, local_rank=local, backend=backend)


class DistributedTrainer(Trainer):
    """Trainer whose steps, evaluations and cancel checks span every rank of `ctx`."""

    def __init__(self, model: torch.nn.Module, config, train, val=None, checkpoint_dir=None, progress=None,
                 cancel=None, ctx: Optional[DistContext] = None) -> None:
        self.ctx = ctx or DistContext()
        if config.batch_size % self.ctx.world_size:
            raise ValueError(f"--batch-size {config.batch_size} is the global batch and must be a multiple of the "
                             f"{self.ctx.world_size} processes")
        super().__init__(model, config, train, val, checkpoint_dir if self.ctx.is_main else None,
                         progress if self.ctx.is_main else None, cancel)
        self.per_rank = config.batch_size // self.ctx.world_size
        self.forward_module = self._wrap()

    def _wrap(self) -> torch.nn.Module:
        """The module the training forward runs through."""
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # Parameters are broadcast from rank 0 here, so every rank starts from the same weights.
        self.ddp = DistributedDataParallel(self.model, device_ids=device_ids)
        return self.ddp

    def _gradient_sync(self, enabled: bool):
        """A context in which backward reduces gradients over the ranks only when `enabled`."""
        return contextlib.nullcontext() if enabled else self.ddp.no_sync()

    def _my_slice(self, indices: torch.Tensor) -> torch.Tensor:
        r = self.ctx.rank
        return indices[r * self.per_rank:(r + 1) * self.per_rank]

    def _train_step(self) -> float:
        lr = self.schedule(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batches = [self.train.batch(self._my_slice(self._next_indices(self.config.batch_size)))
                   for _ in range(self.config.grad_accum)]
        local_targets = sum(int((labels != IGNORE_INDEX).sum()) for _, labels in batches)
        n_targets = max(1.0, self.ctx.sum([float(local_targets)], self.device)[0])
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for i, (inputs, labels) in enumerate(batches):
            last = i == len(batches) - 1
            with self._gradient_sync(last):  # reduce once per step
                with _autocast(self.device, self.config.bf16, self.config.cpu_bf16):
                    loss = _token_loss_sum(self.forward_module, inputs.to(self.device),
                                           labels.to(self.device)) / n_targets
                (loss * self.ctx.world_size).backward()  # DDP averages over ranks; we want the sum
            total += loss.item()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        self.optimizer.step()
        self.step += 1
        return self.ctx.sum([total], self.device)[0]

    @torch.no_grad()
    def _validation_loss(self) -> tuple[float, float]:
        model, blocks, bs = self.model, self.val, self.config.eval_batch_size
        was_training = model.training
        model.clear_cache()
        model.eval()
        total, count = 0.0, 0
        mine = torch.arange(len(blocks))[self.ctx.rank::self.ctx.world_size]
        # The same number of forward passes on every rank (a sharded forward is a collective):
        # a rank with one block fewer runs one more pass on a block it does not count.
        n_batches = math.ceil(math.ceil(len(blocks) / self.ctx.world_size) / bs)
        try:
            for b in range(n_batches):
                index = mine[b * bs:(b + 1) * bs]
                counted = len(index) > 0
                inputs, labels = blocks.batch(index if counted else torch.zeros(1, dtype=torch.long))
                labels = labels.to(self.device)
                with _autocast(self.device, self.config.bf16):
                    loss_sum = _token_loss_sum(model, inputs.to(self.device), labels).item()
                if counted:
                    total += loss_sum
                    count += int((labels != IGNORE_INDEX).sum())
        finally:
            model.train(was_training)
        total, count = self.ctx.sum([total, float(count)], self.device)
        if count == 0:
            raise ValueError("the evaluation blocks have no target tokens")
        loss = total / count
        return loss, math.exp(min(loss, 700.0))

    def _cancelled(self) -> bool:
        return self.ctx.any(super()._cancelled(), self.device)

    def save(self) -> Optional[Path]:
        path = super().save() if self.ctx.is_main else None  # checkpoint_dir is None off rank 0 anyway
        self.ctx.barrier()  # nobody runs ahead of (or exits before) a checkpoint being written
        return path


class ShardedTrainer(DistributedTrainer):
    """DistributedTrainer on a model sharded with FSDP2 (see the module docstring)."""

    def _prepare_model(self) -> None:
        # Before the optimizer exists: fully_shard replaces each parameter by its shard.
        from torch.distributed.fsdp import fully_shard

        for block in self.model.layers:
            fully_shard(block)
        fully_shard(self.model)  # embeddings, final norm, lm_head

    def _wrap(self) -> torch.nn.Module:
        return self.model

    def _gradient_sync(self, enabled: bool):
        self.model.set_requires_gradient_sync(enabled)
        return contextlib.nullcontext()

    def _state_options(self, **kwargs):
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        return StateDictOptions(full_state_dict=True, **kwargs)

    def _trainable_snapshot(self) -> dict[str, torch.Tensor]:
        """Whole trained tensors on rank 0 (a collective: every rank calls it); {} elsewhere."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return get_model_state_dict(self.model, options=self._state_options(cpu_offload=True,
                                                                             ignore_frozen_params=True))

    def _load_trainable(self, tensors: dict[str, torch.Tensor]) -> None:
        """Rank 0's whole tensors, sharded into every rank's parameters (a collective)."""
        from torch.distributed.checkpoint.state_dict import set_model_state_dict

        set_model_state_dict(self.model, tensors if self.ctx.is_main else {},
                             options=self._state_options(broadcast_from_rank0=True, strict=False))

    def _optimizer_snapshot(self) -> dict:
        """The optimizer's whole state on rank 0, in torch's index-keyed layout (a collective)."""
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        by_name = get_optimizer_state_dict(self.model, self.optimizer, options=self._state_options(cpu_offload=True))
        if not self.ctx.is_main:
            return {}
        index = {name: i for i, name in enumerate(n for group in self.param_names for n in group)}
        groups = [dict(group, params=[index[n] for n in group["params"]]) for group in by_name["param_groups"]]
        return {"state": {index[n]: s for n, s in by_name["state"].items()}, "param_groups": groups}

    def _load_optimizer(self, optimizer_state: dict) -> None:
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        names = [n for group in self.param_names for n in group]
        by_name = {}
        if self.ctx.is_main:
            groups = [dict(group, params=[names[i] for i in group["params"]])
                      for group in optimizer_state["param_groups"]]
            by_name = {"state": {names[i]: s for i, s in optimizer_state["state"].items()}, "param_groups": groups}
        set_optimizer_state_dict(self.model, self.optimizer, by_name,
                                 options=self._state_options(broadcast_from_rank0=True))

    def save(self) -> Optional[Path]:
        trainable, optimizer_state = self._trainable_snapshot(), self._optimizer_snapshot()  # every rank
        path = None
        if self.ctx.is_main and self.checkpoint_dir is not None:
            path = self._write_checkpoint(trainable, optimizer_state)
        self.ctx.barrier()
        return path

    def whole_model_state(self) -> dict[str, torch.Tensor]:
        """Every parameter and buffer, whole, on rank 0 ({} elsewhere); a collective."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return get_model_state_dict(self.model, options=self._state_options(cpu_offload=True))
