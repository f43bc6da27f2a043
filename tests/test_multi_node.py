"""Multi-node training by rendezvous, on one machine: two torchrun "nodes" (`--nnodes 2`,
c10d rendezvous on 127.0.0.1, gloo on CPU, one process each) run the real train stage through
Lightning. Each node has its own root (no shared data folder), as separate machines would."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pipelines.layout import Layout
from tests.small import REPO, data_stages_done, env, stage_command

# few, small batches: the point is the rendezvous and the all-reduce, not the model
TINY = [
    "train.batch_size=128",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=0.25",
    "callbacks.early_stopping.enabled=false",
    "strategy.name=ddp",
    "trainer.num_nodes=2",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Params and a root with the data stages done; each node gets its own copy."""
    return data_stages_done(tmp_path_factory.mktemp("prepared"), TINY)


def node_command(node_rank: int, port: int, params: Path, root: Path, *overrides: str) -> list:
    """What an operator runs on node `node_rank`: torchrun around the train stage."""
    return torchrun(node_rank, port, *stage_command("train", params, root, *overrides)[1:])


def torchrun(node_rank: int, port: int, *program: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc-per-node=1",
        f"--node-rank={node_rank}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{port}",
        "--rdzv-id=test-multi-node",
        "--max-restarts=0",
        *program,
    ]


def start_nodes(prepared: tuple[Path, Path], where: Path, *overrides: str) -> list:
    params, data = prepared
    port = free_port()
    nodes = []
    for rank in (0, 1):
        root = shutil.copytree(data, where / f"node{rank}")
        nodes.append(
            subprocess.Popen(
                node_command(rank, port, params, root, *overrides),
                cwd=REPO,
                env=env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return nodes


def finish(node: subprocess.Popen, timeout: float) -> tuple[int, str]:
    try:
        _, stderr = node.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(node)
        raise
    return node.returncode, stderr


def kill_node(node: subprocess.Popen) -> None:
    """SIGKILL a node's torchrun agent and its workers (torchrun starts each worker in a
    session of its own, so the agent's process group does not cover them)."""
    try:
        agent = psutil.Process(node.pid)
        processes = [*agent.children(recursive=True), agent]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)


def stop(node: subprocess.Popen) -> None:
    if node.poll() is None:
        kill_node(node)
        node.communicate()


def rank_files(root: Path) -> dict[str, dict]:
    return {
        p.name: json.loads(p.read_text())
        for p in (root / "outputs" / "train").glob("*/ranks/rank*.json")
    }


@pytest.fixture(scope="module")
def two_nodes(prepared: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("two-nodes")
    nodes = start_nodes(prepared, where)
    try:
        for rank, node in enumerate(nodes):
            code, stderr = finish(node, timeout=300)
            assert code == 0, f"node {rank}: {stderr[-3000:]}"
    finally:
        for node in nodes:
            stop(node)
    return where


@pytest.mark.slow
def test_both_nodes_finish_and_each_wrote_its_rank_figures(two_nodes: Path) -> None:
    found = {**rank_files(two_nodes / "node0"), **rank_files(two_nodes / "node1")}
    assert sorted(found) == ["rank0.json", "rank1.json"]


@pytest.mark.slow
def test_only_rank_0_publishes_the_stage_outputs(two_nodes: Path) -> None:
    rank0 = next(p for p in ("node0", "node1") if "rank0.json" in rank_files(two_nodes / p))
    other = "node1" if rank0 == "node0" else "node0"
    published = Layout(two_nodes / rank0)
    idle = Layout(two_nodes / other)
    for output in ("checkpoint", "train_metrics", "train_history"):
        assert getattr(published, output).exists(), output
        assert not getattr(idle, output).exists(), f"{other} wrote {output}"
    metrics = json.loads(published.train_metrics.read_text())
    assert metrics["val"]["auprc"] == pytest.approx(
        rank_files(two_nodes / rank0)["rank0.json"]["auprc"]
    )


@pytest.mark.slow
def test_gradients_are_averaged_across_nodes_so_both_end_with_the_same_weights(
    two_nodes: Path,
) -> None:
    found = {**rank_files(two_nodes / "node0"), **rank_files(two_nodes / "node1")}
    # one real process group of 2: each rank trained on its own half of the rows (the
    # sampler splits by rank), so only the all-reduce can have made the weights agree
    assert [figures["process_group_size"] for figures in found.values()] == [2, 2]
    digests = {name: figures["trained_weights_sha256"] for name, figures in found.items()}
    assert len(digests) == 2 and len(set(digests.values())) == 1, digests


@pytest.mark.slow
def test_a_killed_node_makes_the_other_fail_with_one_line_before_the_timeout(
    prepared: tuple[Path, Path], tmp_path: Path
) -> None:
    timeout_s = 60
    nodes = start_nodes(
        prepared,
        tmp_path,
        "trainer.max_epochs=200",
        "callbacks.checkpoint.every_n_train_steps=2",
        f"strategy.timeout_s={timeout_s}",
    )
    try:
        # mid-training: once rank 0 has saved its step-2 checkpoint
        deadline = time.monotonic() + 240
        while not list(tmp_path.glob("node*/outputs/train/*/checkpoints/*.ckpt")):
            assert all(n.poll() is None for n in nodes), "a node ended before the kill"
            assert time.monotonic() < deadline, "no epoch finished in 240 s"
            time.sleep(0.5)
        kill_node(nodes[1])
        killed_at = time.monotonic()
        code, stderr = finish(nodes[0], timeout=timeout_s + 60)
        waited = time.monotonic() - killed_at
    finally:
        for node in nodes:
            stop(node)
    assert code != 0
    lines = [line for line in stderr.splitlines() if line.startswith("error: train:")]
    assert len(lines) == 1, stderr[-3000:]
    assert "lost its peers" in lines[0] and f"strategy.timeout_s = {timeout_s}" in lines[0]
    assert waited < timeout_s, f"node 0 took {waited:.0f} s"


@pytest.mark.slow
def test_an_unreachable_rendezvous_endpoint_fails_with_one_line_after_the_timeout(
    prepared: tuple[Path, Path], tmp_path: Path
) -> None:
    """A rank started by a scheduler (SLURM, a job script) with MASTER_ADDR:MASTER_PORT where
    nothing listens waits strategy.timeout_s for rank 0, then says so in one line."""
    params, data = prepared
    root = shutil.copytree(data, tmp_path / "node1")
    port = free_port()  # free: nobody listens there
    timeout_s = 5
    started = time.monotonic()
    done = subprocess.run(
        stage_command("train", params, root, f"strategy.timeout_s={timeout_s}"),
        cwd=REPO,
        env={
            **env(),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "NODE_RANK": "1",
            "LOCAL_RANK": "0",
            "WORLD_SIZE": "2",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.monotonic() - started
    assert done.returncode == 2, done.stderr[-3000:]
    # torch's C++ store logs its own retries above; the pipeline's verdict is the one line
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.stderr.strip().endswith(line)
    assert line.startswith("error: train: no rendezvous with the other ranks at ")
    assert f"MASTER_ADDR:MASTER_PORT = 127.0.0.1:{port}" in line
    assert f"strategy.timeout_s = {timeout_s} s" in line
    assert took >= timeout_s  # it did wait for rank 0, then stopped


def slurm_task_variables(launcher, node: int, local: int, port: int) -> dict[str, str]:
    """What `srun` sets for one task of the job the launcher config describes."""
    tasks = launcher.nodes * launcher.tasks_per_node
    return {
        "SLURM_NTASKS": str(tasks),
        "SLURM_NTASKS_PER_NODE": str(launcher.tasks_per_node),
        "SLURM_PROCID": str(node * launcher.tasks_per_node + local),
        "SLURM_NODEID": str(node),
        "SLURM_LOCALID": str(local),
        "SLURM_NODELIST": "127.0.0.1",  # the first node hosts the rendezvous
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "train",
        "MASTER_PORT": str(port),
    }


def torchrun_variables(node: int, port: int) -> dict[str, str]:
    """What torchrun sets for the one worker of node `node` in the two-node launch above."""
    return {
        "TORCHELASTIC_RUN_ID": "test-multi-node",
        "WORLD_SIZE": "2",
        "RANK": str(node),
        "GROUP_RANK": str(node),
        "LOCAL_RANK": "0",
        "LOCAL_WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }


def process_group_variables(environment) -> dict[str, str]:
    """The variables Lightning exports before init_process_group (what gloo reads)."""
    return {
        "MASTER_ADDR": environment.main_address,
        "MASTER_PORT": str(environment.main_port),
        "WORLD_SIZE": str(environment.world_size()),
        "RANK": str(environment.global_rank()),
        "NODE_RANK": str(environment.node_rank()),
        "LOCAL_RANK": str(environment.local_rank()),
    }


def test_the_slurm_launcher_config_gives_each_task_the_world_the_torchrun_test_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hydra import compose, initialize_config_dir
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    from pipelines.zero_check import CONF

    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["hydra/launcher=slurm", *TINY, "trainer.devices=1"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert (launcher.nodes, launcher.tasks_per_node) == (2, 1)
    port = 29555
    for node in (0, 1):
        with monkeypatch.context() as patched:
            for name, value in slurm_task_variables(launcher, node, 0, port).items():
                patched.setenv(name, value)
            assert SLURMEnvironment.detect()
            slurm = process_group_variables(SLURMEnvironment())
        with monkeypatch.context() as patched:
            for name, value in torchrun_variables(node, port).items():
                patched.setenv(name, value)
            assert TorchElasticEnvironment.detect()
            torchrun = process_group_variables(TorchElasticEnvironment())
        assert slurm == torchrun, f"node {node}"
        assert slurm["WORLD_SIZE"] == "2" and slurm["NODE_RANK"] == str(node)


@pytest.mark.slow
def test_deepspeed_engines_on_two_nodes_average_their_zero2_gradients() -> None:
    """Lightning's DeepSpeed strategy needs CUDA; DeepSpeed's own engine (the YAML's ZeRO-2
    config) runs on CPU with gloo, one per node, each on its own batches."""
    port = free_port()
    program = ["-m", "pipelines.zero_check", "strategy=deepspeed_zero2", "model=dense_mlp"]
    nodes = [
        subprocess.Popen(
            torchrun(rank, port, *program, "steps=4"),
            cwd=REPO,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = []
    try:
        for node in nodes:
            out, err = node.communicate(timeout=400)
            assert node.returncode == 0, err[-3000:]
            outputs.append(out)
    finally:
        for node in nodes:
            stop(node)
    digests = {line.split()[-1] for out in outputs for line in out.splitlines() if "sha256" in line}
    losses = [out.strip().splitlines()[-1].split("losses")[1] for out in outputs]
    assert len(digests) == 1, outputs  # one set of weights on both nodes
    assert losses[0] != losses[1]  # from different batches: only the all-reduce made them agree
