"""A fake batch system for the tests: one script behind every scheduler command name.

Called as ``fake_scheduler.py COMMAND ARGS...`` by small stubs on PATH (see tests/fakes.py).
State lives in the JSON file $FAKE_SCHEDULER_STATE:

    {"next_id": 1,
     "jobs": {"7": {"name": "alcap-...", "state": "RUNNING", "listed": true}},
     "answers": {"squeue": {"stdout": "garbage", "stderr": "", "exit": 0, "sleep": 0}}}

A command with an entry in "answers" prints that and exits with its code (after sleeping,
to provoke timeouts); otherwise it acts on "jobs".  "listed": false is a job the queue has
forgotten (squeue past MinJobAge, qstat after the end) but accounting still knows.
Every call is appended to calls.log next to the state file.  With "execute": true the
Slurm commands act on real processes: sbatch starts the script detached (its PID in the
job), squeue and sacct call a job whose process is gone COMPLETED, scancel kills it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

STATE = Path(os.environ["FAKE_SCHEDULER_STATE"])


def option(args: list[str], *names: str) -> str | None:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def submit(state: dict[str, Any], name: str, queued: str | int) -> str:
    job_id = str(state["next_id"])
    state["next_id"] += 1
    state["jobs"][job_id] = {"name": name, "state": queued, "listed": True}
    return job_id


def execute(args: list[str]) -> int:
    """Start sbatch's script for real, detached, in its --chdir, logs where --output says."""
    chdir = option(args, "--chdir") or "."
    out, err = (
        open(option(args, name) or os.devnull, "ab")  # noqa: SIM115 - handed to the child
        for name in ("--output", "--error")
    )
    with out, err:
        return subprocess.Popen(
            ["/bin/sh", args[-1]], cwd=chdir, stdout=out, stderr=err, start_new_session=True
        ).pid


def gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def refresh(state: dict[str, Any]) -> None:
    """Executed jobs whose process ended are COMPLETED (the wrapper's exit file says how)."""
    for job in state["jobs"].values():
        if job["state"] == "RUNNING" and "pid" in job and gone(job["pid"]):
            job["state"] = "COMPLETED"


def jobs_named(state: dict[str, Any], args: list[str]) -> dict[str, dict[str, Any]]:
    ids = option(args, "-j")
    names = option(args, "--name")
    jobs: dict[str, dict[str, Any]] = state["jobs"]
    if ids is not None:
        return {i: jobs[i] for i in ids.split(",") if i in jobs}
    if names is not None:
        return {i: job for i, job in jobs.items() if job["name"] in names.split(",")}
    return jobs


def qstat_xml(state: dict[str, Any]) -> str:
    rows = "".join(
        f"<job_list><JB_job_number>{i}</JB_job_number><JB_name>{job['name']}</JB_name>"
        f"<state>{job['state']}</state></job_list>"
        for i, job in state["jobs"].items()
        if job["listed"]
    )
    return f"<?xml version='1.0'?><job_info><queue_info>{rows}</queue_info></job_info>"


def condor_json(state: dict[str, Any], listed: bool) -> str:
    ads = [
        {"ClusterId": int(i), "ProcId": 0, "JobStatus": job["state"], "JobBatchName": job["name"]}
        for i, job in state["jobs"].items()
        if job["listed"] == listed
    ]
    return json.dumps(ads) if ads else ""


def act(command: str, args: list[str], state: dict[str, Any]) -> tuple[str, int]:
    jobs: dict[str, dict[str, Any]] = state["jobs"]
    if command == "sbatch":
        job_id = submit(state, option(args, "--job-name") or "", "PENDING")
        if state.get("execute"):
            jobs[job_id].update(state="RUNNING", pid=execute(args))
        return job_id, 0
    if command == "squeue":
        return "".join(
            f"{i}|{job['state']}|None|{job['name']}\n"
            for i, job in jobs_named(state, args).items()
            if job["listed"]
        ), 0
    if command == "sacct":
        return "".join(
            f"{i}|{job['state']}|0:0|{job['name']}\n" for i, job in jobs_named(state, args).items()
        ), 0
    if command in ("scancel", "qdel", "condor_rm"):
        for job_id in args:
            job = jobs.get(job_id.split(".")[0], {})
            job["state"] = "CANCELLED"
            if "pid" in job and not gone(job["pid"]):
                os.killpg(job["pid"], signal.SIGKILL)
        return "", 0
    if command == "qsub":
        return submit(state, option(args, "-N") or "", "qw"), 0
    if command == "qstat":
        return qstat_xml(state), 0
    if command == "qacct":
        finished = jobs.get(args[-1])
        if finished is None or finished["listed"]:
            print(f"error: job id {args[-1]} not found", file=sys.stderr)
            return "", 1
        return f"jobnumber {args[-1]}\nfailed 0\nexit_status 0\n", 0
    if command == "condor_submit":
        match = re.search(r"^batch_name = (.*)$", Path(args[-1]).read_text(), re.MULTILINE)
        job_id = submit(state, match.group(1) if match else "", 1)
        return f"{job_id}.0 - {job_id}.0\n", 0
    if command in ("condor_q", "condor_history"):
        return condor_json(state, listed=command == "condor_q"), 0
    if command == "scontrol" and args[:2] == ["show", "config"]:
        return "MaxArraySize            = 1001\n", 0  # Slurm's default
    if command == "qconf" and args[:1] == ["-sconf"]:
        return "max_aj_tasks                 75000\n", 0  # Grid Engine's default
    print(f"fake scheduler: unknown command {command}", file=sys.stderr)
    return "", 2


def main() -> int:
    command, args = sys.argv[1], sys.argv[2:]
    state = json.loads(STATE.read_text())
    with (STATE.parent / "calls.log").open("a") as log:
        log.write(" ".join([command, *args]) + "\n")
    answer = state.get("answers", {}).get(command)
    if answer is not None:
        time.sleep(answer.get("sleep", 0))
        sys.stdout.write(answer.get("stdout", ""))
        sys.stderr.write(answer.get("stderr", ""))
        return int(answer.get("exit", 0))
    refresh(state)
    stdout, code = act(command, args, state)
    STATE.write_text(json.dumps(state))
    sys.stdout.write(stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
