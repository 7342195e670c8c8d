"""The background-run logic of the Slicer modules, without Qt: real ``python -m lesionseg`` jobs started by
the plain subprocess launcher, their JSON-lines progress, their errors, and Cancel killing the whole tree.

The process tree of a job is read from ``/proc`` (parent links), independently of the code under test.
"""

from __future__ import annotations

import importlib
import io
import os
import py_compile
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import SMALL_PHANTOM
from lesionseg.progress import JsonLinesProgress

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "LesionSegInference" / "LesionSegInferenceLib"
HAS_PROC = Path("/proc/self/stat").is_file()


@pytest.fixture(scope="module")
def lib():
    """``LesionSegInferenceLib`` imported as Slicer does (the module folder on ``sys.path``)."""
    folder = str(REPO / "LesionSegInference")
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    modules = {name: importlib.import_module(f"LesionSegInferenceLib.{name}")
               for name in ("JobProgress", "Process", "ProcessTree", "SlicerLaunchers")}
    yield modules
    if added:
        sys.path.remove(folder)


# ----------------------------------------------------------------------------- reading the output
def _jsonl(*events) -> list[str]:
    """The lines lesionseg's own JSON-lines progress writer prints for these events."""
    stream = io.StringIO()
    writer = JsonLinesProgress(stream)
    for event in events:
        writer(event)
    return stream.getvalue().splitlines()


def test_parser_reads_progress_epochs_warnings_and_the_summary(lib):
    parser = lib["JobProgress"].ProgressParser()
    lines = _jsonl(
        {"event": "progress", "stage": "prepare", "done": 0, "total": 8},
        {"event": "progress", "stage": "prepare", "done": 3, "total": 8, "message": "sub-03"},
    )
    assert [parser.feed(line)["event"] for line in lines] == ["progress", "progress"]
    progress = parser.progress
    assert (progress.stage, progress.fraction, progress.message) == ("prepare", 3 / 8, "sub-03")

    parser.feed("WARNING: a log line from a library")
    epoch = {"event": "epoch", "fold": 1, "epochs": 200, "epoch": 49, "iterations": 500, "loss": 0.31,
             "lr": 1e-4, "val_dice": float("nan"), "eta_s": 12.5}
    for line in _jsonl(epoch, {"event": "warning", "stage": "difficulty", "message": "case sub-07 has no lesion"}):
        parser.feed(line)
    state = parser.progress
    assert state.fraction == 50 / 200 and (state.epoch, state.epochs, state.fold) == (49, 200, 1)
    assert state.metrics == {"loss": 0.31, "lr": 1e-4}  # NaN arrives as null and is not a metric
    assert state.eta_s == 12.5 and state.stage == "difficulty"
    assert state.warnings == ("case sub-07 has no lesion",) and state.message == "case sub-07 has no lesion"
    assert state.events == 4

    parser.feed(_jsonl({"event": "done", "stage": "prepare", "cases": 8, "slices": 61})[0])
    assert parser.progress.fraction == 1.0
    result = parser.result(0)
    assert result.ok and result.summary == {"stage": "prepare", "cases": 8, "slices": 61}
    assert result.log == ("WARNING: a log line from a library",)


@pytest.mark.parametrize("returncode, cancelled, state, error", [
    (0, False, "succeeded", ""),
    (0, True, "succeeded", ""),  # Cancel came after the job had finished its work
    (2, False, "failed", "the dataset folder 'x' does not exist."),
    (3, False, "partial", "the dataset folder 'x' does not exist."),
    (130, False, "cancelled", ""),
    (-9, True, "cancelled", ""),
    (1, False, "failed", "the dataset folder 'x' does not exist."),
])
def test_parser_turns_exit_codes_into_outcomes(lib, returncode, cancelled, state, error):
    parser = lib["JobProgress"].ProgressParser()
    parser.feed('{"not an event": 1}')
    parser.feed("{broken json")
    parser.feed("lesionseg prepare: error: the dataset folder 'x' does not exist.\n")
    assert parser.progress.events == 0
    result = parser.result(returncode, cancelled=cancelled)
    assert (result.state, result.returncode, result.error) == (state, returncode, error)


def test_internal_errors_and_signals_get_a_sentence(lib):
    parser = lib["JobProgress"].ProgressParser()
    parser.feed("Traceback (most recent call last):")
    parser.feed("ZeroDivisionError: division by zero")
    assert "internal error (ZeroDivisionError: division by zero)" in parser.result(1).error
    assert lib["JobProgress"].ProgressParser().result(-11).error == "lesionseg was stopped by signal 11."


# ----------------------------------------------------------------------------- the job, with a fake launcher
class FakeHandle:
    def __init__(self) -> None:
        self.pid, self.killed = 4242, 0

    def kill_tree(self) -> None:
        self.killed += 1

    def wait(self, timeout=None) -> bool:
        return True


class FakeLauncher:
    """Replays output lines at once, as if the process printed them, then ends (unless told to hang)."""

    def __init__(self, lines, returncode=0, finish=True) -> None:
        self.lines, self.returncode, self.finish = lines, returncode, finish
        self.calls = []

    def start(self, args, on_line, on_finished, *, env=None, cwd=None):
        self.calls.append((list(args), dict(env or {}), cwd))
        self.handle = FakeHandle()
        self.on_finished = on_finished
        for line in self.lines:
            on_line(line)
        if self.finish:
            on_finished(self.returncode)
        return self.handle


def test_job_builds_the_command_and_reports_through_callbacks(lib, tmp_path):
    Process = lib["Process"]
    lines = _jsonl({"event": "progress", "stage": "train", "done": 1, "total": 4}) + ["a log line"]
    launcher = FakeLauncher(lines + _jsonl({"event": "done", "stage": "train", "bundle": "run/model.lsb"}))
    seen = {"progress": [], "log": [], "finished": []}
    job = Process.BackgroundJob("train", ["prepared", tmp_path / "run", "--epochs", 2], launcher=launcher,
                                python="/opt/Slicer/bin/PythonSlicer", cwd=str(tmp_path),
                                on_progress=seen["progress"].append, on_log=seen["log"].append,
                                on_finished=seen["finished"].append)
    result = job.start(waitForCompletion=True)
    args, env, cwd = launcher.calls[0]
    assert args == ["/opt/Slicer/bin/PythonSlicer", "-m", "lesionseg", "train", "prepared", str(tmp_path / "run"),
                    "--epochs", "2", "--progress", "jsonl"]
    assert env["PYTHONUNBUFFERED"] == "1"
    assert Path(env["PYTHONPATH"].split(os.pathsep)[0]) == REPO  # the folder holding the lesionseg package
    assert cwd == str(tmp_path)
    assert [p.fraction for p in seen["progress"]] == [0.25, 1.0]
    assert seen["log"] == ["a log line"]
    assert seen["finished"] == [result] and result.ok and result.summary["bundle"] == "run/model.lsb"
    assert job.state == "succeeded" and not job.running
    with pytest.raises(RuntimeError, match="already started"):
        job.start()


def test_cancel_kills_the_tree_once_and_ends_cancelled(lib):
    Process = lib["Process"]
    launcher = FakeLauncher(_jsonl({"event": "progress", "stage": "prepare", "done": 1, "total": 9}), finish=False)
    job = Process.BackgroundJob("prepare", ["in", "out"], launcher=launcher, python="python")
    assert job.start() is None and job.running
    job.cancel()
    job.cancel()
    assert launcher.handle.killed == 1 and job.state == "cancelling"
    launcher.on_finished(-9)
    assert job.state == "cancelled" and job.result.state == "cancelled"
    job.cancel()  # after the end: nothing to kill
    assert launcher.handle.killed == 1


def test_a_missing_interpreter_fails_with_a_sentence(lib, tmp_path):
    Process = lib["Process"]
    result = Process.run_lesionseg("prepare", ["in", "out"], python=str(tmp_path / "no-such-python"))
    assert result.state == "failed" and result.returncode == 127
    assert result.error.startswith("the job could not start:") and "no-such-python" in result.error


def test_python_outside_slicer_is_this_interpreter(lib):
    assert lib["Process"].python_executable() == sys.executable


# ----------------------------------------------------------------------------- real jobs
def test_blocking_run_of_a_real_job_with_bad_input_returns_the_cli_sentence(lib, tmp_path):
    missing = tmp_path / "absent"
    result = lib["Process"].run_lesionseg("prepare", [missing, tmp_path / "out"])
    assert result.state == "failed" and result.returncode == 2
    assert str(missing) in result.error and result.error.count("\n") == 0


@pytest.mark.slow
def test_blocking_run_of_a_real_job_reports_progress_and_its_summary(lib, tmp_path):
    from lesionseg.synth import write_cohort

    write_cohort(tmp_path / "data", 2, modalities=("flair",), seed=3, **SMALL_PHANTOM)
    fractions = []
    result = lib["Process"].run_lesionseg("prepare", [tmp_path / "data", tmp_path / "prepared", "--size", "32"],
                                          on_progress=lambda progress: fractions.append(progress.fraction))
    assert result.ok, result.log
    assert fractions == [0.0, 0.5, 1.0, 1.0]  # 0/2, 1/2, 2/2 cases, then the "done" event
    assert result.summary["cases"] == 2 and result.summary["slices"] > 0
    assert (tmp_path / "prepared" / "prepare.json").is_file()


# ----------------------------------------------------------------------------- the process tree, from /proc
def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process from /proc, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (command) "
    return fields[0], int(fields[1]), int(fields[19])


def process_tree(root: int) -> dict[int, int]:
    """The root and all its descendants: pid -> start time (clock ticks since boot)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None:
                children.setdefault(stat[1], []).append(int(entry.name))
                starts[int(entry.name)] = stat[2]
    tree, queue = {}, [root]
    while queue:
        pid = queue.pop()
        if pid in starts:
            tree[pid] = starts[pid]
            queue.extend(children.get(pid, []))
    return tree


def alive(tree: dict[int, int]) -> list[int]:
    """The processes of a tree still running (zombies and reused pids do not count)."""
    running = []
    for pid, start in tree.items():
        stat = _proc_stat(pid)
        if stat is not None and stat[2] == start and stat[0] not in ("Z", "X"):
            running.append(pid)
    return running


@pytest.fixture(scope="module")
def six_cases(tmp_path_factory) -> Path:
    from lesionseg.synth import write_cohort

    root = tmp_path_factory.mktemp("background") / "data"
    write_cohort(root, 6, modalities=("flair",), seed=5, **SMALL_PHANTOM)
    return root


@pytest.mark.slow
@pytest.mark.skipif(not HAS_PROC, reason="reads the process tree from /proc (Linux)")
def test_cancel_kills_a_real_job_and_its_workers(lib, six_cases, tmp_path):
    third_event = threading.Event()
    events = []

    def on_progress(progress):
        events.append(progress)
        if progress.events >= 3:
            third_event.set()

    job = lib["Process"].BackgroundJob(
        "prepare", [six_cases, tmp_path / "prepared", "--workers", "2", "--size", "64"],
        on_progress=on_progress, on_finished=lambda result: third_event.set())
    job.start()
    assert third_event.wait(120), "the job sent fewer than 3 progress events"
    assert job.running, job.result
    tree = process_tree(job._handle.pid)  # collected before the kill
    assert len(tree) >= 3, f"expected the job and its 2 workers, found {sorted(tree)}"
    assert [event.fraction for event in events[:3]] == [0.0, 1 / 6, 2 / 6]

    started = time.monotonic()
    job.cancel()
    try:
        while alive(tree) and time.monotonic() - started < 5.0:
            time.sleep(0.05)
        assert alive(tree) == [], f"still running 5 s after Cancel: {alive(tree)}"
    finally:
        for pid in alive(tree):  # leave nothing behind when the assertion fails
            os.kill(pid, signal.SIGKILL)
    result = job.wait(10)
    assert result is not None and result.state == "cancelled" and job.state == "cancelled"
    assert result.summary == {}  # no "done" event: the job did not finish
    assert not (tmp_path / "prepared" / "prepare.json").exists()


# ----------------------------------------------------------------------------- the launchers Slicer uses
_TREE_SCRIPT = (
    "import os, subprocess, sys; "
    "print('group', os.getpgid(0), 'session', os.getsid(0), 'pid', os.getpid(), flush=True); "
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    "print('child', child.pid, flush=True); child.wait()"
)


@pytest.mark.skipif(os.name == "nt", reason="POSIX sessions")
def test_session_leader_command_announces_its_group_and_its_kill_reaches_grandchildren(lib):
    ProcessTree = lib["ProcessTree"]
    command = ProcessTree.session_leader_command([sys.executable, "-c", _TREE_SCRIPT])
    # no start_new_session here: the command itself must leave this test's process group
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, encoding="utf-8", errors="replace")
    try:
        group = ProcessTree.session_marker_group(process.stdout.readline())
        assert group == process.pid  # exec kept the pid
        words = process.stdout.readline().split()
        assert words == ["group", str(group), "session", str(group), "pid", str(group)]
        assert os.getpgid(0) != group
        child = int(process.stdout.readline().split()[1])
        assert os.getpgid(child) == group
        grandchild = process_tree(child) if HAS_PROC else {}
        assert ProcessTree.kill_process_tree(group)
        assert process.wait(10) == -9
        deadline = time.monotonic() + 5
        while alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive(grandchild) == []
    finally:
        if process.poll() is None:
            process.kill()
    assert ProcessTree.session_marker_group("lesionseg process group x") is None
    assert ProcessTree.session_marker_group('{"event": "progress"}') is None


def test_slicer_launchers_compile_and_match_slicers_launch_console_process(lib, tmp_path):
    py_compile.compile(str(LIB / "SlicerLaunchers.py"), cfile=str(tmp_path / "launchers.pyc"), doraise=True)
    pytest.importorskip("slicer")  # slicer-core's slicer.util has the 5.12+ launchConsoleProcess
    assert lib["SlicerLaunchers"].has_console_process_callbacks()
