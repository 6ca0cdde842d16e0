"""A study on a real one-node Slurm cluster on this machine: slurmctld and slurmd started by the
test, the workers submitted by `augment-eval --cluster slurm` as batch jobs through dask-jobqueue.

Opt-in (it needs Debian's `slurm-wlm` and starts daemons): `pytest -m slurm tests/test_slurm.py`;
it skips where the Slurm daemons are not installed.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from tests.test_engine import cells_of, environment, sweep, wait_for

pytestmark = [pytest.mark.slurm,
              pytest.mark.skipif(not all(shutil.which(p) for p in ("slurmctld", "slurmd", "sbatch", "sinfo")),
                                 reason="Slurm is not installed (Debian: apt-get install slurm-wlm)"),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Slurm runs on Linux")]

# One node (this machine), no munge: the daemons and the test trust each other (auth/none).
CONF = """ClusterName=radiogan-test
SlurmctldHost={host}
AuthType=auth/none
CredType=cred/none
ProctrackType=proctrack/pgid
TaskPlugin=task/none
MpiDefault=none
SlurmUser={user}
SlurmdUser={user}
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={host} CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def slurm(tmp_path, monkeypatch):
    """A one-node Slurm cluster, its config in SLURM_CONF for the commands the test runs."""
    folder = tmp_path / "slurm"
    for sub in ("state", "spool", "logs"):
        (folder / sub).mkdir(parents=True)
    conf = folder / "slurm.conf"
    conf.write_text(CONF.format(host=socket.gethostname().split(".")[0], user=os.environ.get("USER", "root"),
                                ctld_port=free_port(), d_port=free_port(), dir=folder, cpus=os.cpu_count()))
    monkeypatch.setenv("SLURM_CONF", str(conf))
    monkeypatch.setenv("DASK_JOBQUEUE__SLURM__LOG_DIRECTORY", str(folder / "logs"))  # the jobs' output files
    daemons = [subprocess.Popen(command, env={**environment(), "SLURM_CONF": str(conf)}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
               for command in (["slurmctld", "-D", "-i"], ["slurmd", "-D"])]
    try:
        wait_for(lambda: subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True).stdout.strip()
                 == "idle", 60, "the Slurm node to be idle")
        yield folder
    finally:
        subprocess.run(["scancel", "--full", "--partition", "test"], capture_output=True)
        for daemon in daemons:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(daemon.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def generator(tmp_path_factory, session_cache):
    from tests.test_augment_eval import make_generator

    return make_generator(tmp_path_factory.mktemp("gen"), split="cv", fold=0)


def test_a_sweep_runs_on_slurm_batch_jobs_with_the_numbers_of_one_process(slurm, generator, tmp_path):
    alone = sweep(tmp_path / "alone", generator, "--workers", "1")
    assert alone.exit_code == 0, alone.output
    result = sweep(tmp_path / "slurm-out", generator, "--cluster", "slurm", "--workers", "1", "--job-cores", "1",
                   "--job-memory", "2GB", "--job-walltime", "00:10:00", "--job-queue", "test")
    assert result.exit_code == 0, result.output + "".join(p.read_text() for p in (slurm / "logs").glob("*"))
    assert "cells run on 1 slurm job (dask-jobqueue)" in result.output
    got, want = cells_of(tmp_path / "slurm-out"), cells_of(tmp_path / "alone")
    assert sorted(got) == sorted(want) == ["r=0", "r=1"]
    for arm in want:  # the same numbers and identity as in one process
        assert got[arm]["identity"] == want[arm]["identity"]
        assert got[arm]["test"]["confusion_matrix"] == want[arm]["test"]["confusion_matrix"]
    assert list((slurm / "logs").glob("*.err")) or list((slurm / "logs").glob("*.out")), "no batch job ran"
