"""``watch`` with real files and real file-system events in temporary folders: finished images
are deployed, partial / temporary / hidden files are not, duplicates deploy once, a restart
deploys only what is new, and the command stops cleanly on SIGTERM and on Ctrl-C (SIGINT)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("watchdog")

from orchestrator.watch import Watcher, asset_path_for, is_candidate_name, is_complete_image  # noqa: E402


# How long a watcher may take to stop after Ctrl-C: it finishes the file in hand and joins its
# observer thread, which under a full test run on a 2-core machine once took over 20 s.
STOP_WAIT = 60


def png_bytes(seed: int, size: int = 8) -> bytes:
    rgba = np.random.default_rng(seed).integers(0, 256, size=(size, size, 4), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def dirs(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    proj = tmp_path / "game"
    (proj / "assets").mkdir(parents=True)
    (proj / "Cargo.toml").write_text('[dependencies]\nbevy = "0.13"\n')
    return drop, proj


class Recorder:
    def __init__(self):
        self.events: list[dict] = []
        self.cond = threading.Condition()

    def __call__(self, ev):
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()

    def of(self, kind):
        with self.cond:
            return [e for e in self.events if e["event"] == kind]

    def wait_for(self, kind, n=1, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len([e for e in self.events if e["event"] == kind]) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"waited {timeout} s for {n} '{kind}' events; got {self.events}")
                self.cond.wait(left)


def manifest(proj: Path) -> list[dict]:
    p = proj / "assets" / ".dgx-pixels" / "manifest.json"
    return json.loads(p.read_text())["assets"] if p.exists() else []


def test_names_and_completeness_checks(tmp_path):
    assert is_candidate_name("a.png") and is_candidate_name("sub/b.JPG")
    for bad in ("a.png.tmp", ".a.png", "a.png~", "~a.png", "x.part", "a.txt", ".cache/a.png", "a.png.crdownload"):
        assert not is_candidate_name(bad), bad
    data = png_bytes(1)
    f = tmp_path / "x.png"
    f.write_bytes(data[: len(data) // 2])
    assert not is_complete_image(f)
    f.write_bytes(data)
    assert is_complete_image(f)
    # a JPEG whose EXIF thumbnail (ending in the same FFD9 marker) is written before the main image
    thumb = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(thumb, "JPEG")
    exif = Image.Exif()
    main = io.BytesIO()
    Image.new("RGB", (64, 64), (30, 200, 30)).save(main, "JPEG", exif=exif.tobytes())
    whole = main.getvalue()
    j = tmp_path / "x.jpg"
    j.write_bytes(whole[: len(whole) // 2] + thumb.getvalue()[-2:])  # cut, yet ending in FFD9
    assert not is_complete_image(j)
    j.write_bytes(whole)
    assert is_complete_image(j)
    assert asset_path_for("sub dir/My Sprite.jpg", "sprites/") == "sprites/sub_dir/My_Sprite.png"
    assert asset_path_for("../../x.png", "") == "x.png"


def test_a_short_text_file_named_png_is_no_image_at_once(tmp_path):
    """Bytes that no writer can still turn into an image fail at once; a text file under 12
    bytes ("notpng") waited unreported for good. A file that begins like an image, or nothing
    yet, may still be one being written."""
    from orchestrator.watch import is_not_an_image

    f = tmp_path / "x.png"
    for data, verdict in ((b"notpng\n", True), (b"hello world, this is text", True), (b"", False),
                          (b"\x89PN", False), (b"\x89PNG\r\n\x1a\n\x00\x00", False), (b"GIF8", False),
                          (b"\xff", False), (b"RIFF\x00\x00", False)):
        f.write_bytes(data)
        assert is_not_an_image(f) is verdict, data


def test_new_finished_images_are_deployed_partial_and_temp_files_are_not(dirs):
    drop, proj = dirs
    rec = Recorder()
    w = Watcher(drop, proj, asset_dir="sprites/", debounce=0.1, on_event=rec)
    w.start()
    try:
        rec.wait_for("ready")
        # a finished file, written in one go
        (drop / "hero.png").write_bytes(png_bytes(1))
        rec.wait_for("deployed", 1)
        # a file written in two halves with a pause longer than the debounce: not deployed halfway
        data = png_bytes(2, size=64)
        with open(drop / "slow.png", "wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
            time.sleep(0.6)
            assert [e["asset"] for e in rec.of("deployed")] == ["sprites/hero.png"]
            fh.write(data[len(data) // 2:])
        rec.wait_for("deployed", 2)
        # temporary and hidden files are ignored; the rename to the final name counts
        (drop / "atomic.png.tmp").write_bytes(png_bytes(3))
        (drop / ".hidden.png").write_bytes(png_bytes(4))
        (drop / "backup.png~").write_bytes(png_bytes(5))
        (drop / "notes.txt").write_text("hello")
        time.sleep(0.5)
        assert len(rec.of("deployed")) == 2
        os.replace(drop / "atomic.png.tmp", drop / "atomic.png")
        rec.wait_for("deployed", 3)
        # the same content under another name is deployed once
        (drop / "hero-copy.png").write_bytes(png_bytes(1))
        rec.wait_for("duplicate", 1)
        # a file renamed in the folder names its asset anew; the old asset stays in the game
        os.replace(drop / "slow.png", drop / "slow_idle.png")
        rec.wait_for("deployed", 4)
        # sub-folders keep their structure
        (drop / "run2").mkdir()
        (drop / "run2" / "tile.png").write_bytes(png_bytes(6))
        rec.wait_for("deployed", 5)
    finally:
        w.stop()
    assets = sorted(e["asset"] for e in rec.of("deployed"))
    assert assets == ["sprites/atomic.png", "sprites/hero.png", "sprites/run2/tile.png", "sprites/slow.png",
                      "sprites/slow_idle.png"]
    entries = {e["path"]: e for e in manifest(proj)}
    assert sorted(entries) == assets
    got = np.asarray(Image.open(proj / "assets" / "sprites" / "slow.png").convert("RGBA"))
    want = np.asarray(Image.open(io.BytesIO(png_bytes(2, size=64))).convert("RGBA"))
    np.testing.assert_array_equal(got, want)
    assert (proj / "assets" / "sprites" / "hero.png.meta").is_file()
    assert entries["sprites/hero.png"]["provenance"]["source"]["file"] == str(drop / "hero.png")
    assert not (proj / "assets" / "sprites" / "hidden.png").exists()
    lat = [e["latency_ms"] for e in rec.of("deployed")]
    assert all(x is not None and x < 5000 for x in lat)


def test_restart_does_not_redeploy_and_picks_up_files_added_while_down(dirs):
    drop, proj = dirs
    (drop / "old.png").write_bytes(png_bytes(10))
    rec = Recorder()
    w = Watcher(drop, proj, debounce=0.05, on_event=rec)
    w.start()
    try:
        rec.wait_for("ready")
        (drop / "a.png").write_bytes(png_bytes(11))
        rec.wait_for("deployed", 1)
    finally:
        w.stop()
    # the file that was there before the first start is the baseline, not deployed
    assert [e["asset"] for e in rec.of("deployed")] == ["sprites/a.png"]
    (drop / "b.png").write_bytes(png_bytes(12))  # added while the watcher is down
    rec2 = Recorder()
    w2 = Watcher(drop, proj, debounce=0.05, on_event=rec2)
    w2.start()
    try:
        rec2.wait_for("deployed", 1)
        time.sleep(0.4)
    finally:
        w2.stop()
    assert [e["asset"] for e in rec2.of("deployed")] == ["sprites/b.png"]
    assert sorted(e["path"] for e in manifest(proj)) == ["sprites/a.png", "sprites/b.png"]
    assert all(e["exports"] == 1 for e in manifest(proj))


def test_existing_flag_deploys_what_is_already_there(dirs):
    drop, proj = dirs
    (drop / "old.png").write_bytes(png_bytes(20))
    rec = Recorder()
    w = Watcher(drop, proj, debounce=0.05, existing=True, on_event=rec)
    w.start()
    try:
        rec.wait_for("deployed", 1)
    finally:
        w.stop()
    assert [e["asset"] for e in rec.of("deployed")] == ["sprites/old.png"]


def test_lost_state_file_still_deploys_once(dirs):
    drop, proj = dirs
    rec = Recorder()
    w = Watcher(drop, proj, debounce=0.05, on_event=rec, existing=True)
    w.start()
    try:
        rec.wait_for("ready")
        (drop / "a.png").write_bytes(png_bytes(30))
        rec.wait_for("deployed", 1)
    finally:
        w.stop()
    w.state_path.unlink()
    rec2 = Recorder()
    w2 = Watcher(drop, proj, debounce=0.05, on_event=rec2, existing=True)
    w2.start()
    try:
        rec2.wait_for("deployed", 1)
    finally:
        w2.stop()
    # The manifest knows the deploy id (content hash): nothing was exported a second time.
    assert rec2.of("deployed")[0]["already"] is True
    assert [e["exports"] for e in manifest(proj)] == [1]


def test_a_state_file_nested_past_reading_is_a_fresh_start_not_a_traceback(dirs):
    """The state file is ours, but a disk or a hand can break it: arrays nested thousands deep
    raised RecursionError out of the watcher's constructor. It is read as unreadable: a new
    state (the manifest still keeps deploys from repeating)."""
    drop, proj = dirs
    w = Watcher(drop, proj, debounce=0.05)
    w.state_path.parent.mkdir(parents=True, exist_ok=True)
    w.state_path.write_text("[" * 100_000 + "]" * 100_000)
    w2 = Watcher(drop, proj, debounce=0.05)
    assert w2._state["files"] == {} and w2._state.get("new") is True


def test_cli_stops_cleanly_on_sigterm(dirs):
    drop, proj = dirs
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "watch", str(drop), "--bevy", str(proj), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready"
        (drop / "c.png").write_bytes(png_bytes(40))
        ev = json.loads(proc.stdout.readline())
        assert ev["event"] == "deployed" and ev["asset"] == "sprites/c.png"
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=STOP_WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0
    assert "stopped: 1 deployed" in proc.stderr.read()


class Lines:
    """stdout of a child process read on a thread, so a silent child fails the test instead of hanging it."""

    def __init__(self, stream):
        import queue

        self.q: queue.Queue = queue.Queue()
        self.t = threading.Thread(target=lambda: [self.q.put(line) for line in stream], daemon=True)
        self.t.start()

    def next_event(self, timeout: float = 20.0) -> dict:
        import queue

        try:
            return json.loads(self.q.get(timeout=timeout))
        except queue.Empty:
            raise AssertionError(f"no event line within {timeout} s") from None

    def rest(self) -> list[dict]:
        self.t.join(10)
        out = []
        while not self.q.empty():
            out.append(json.loads(self.q.get()))
        return out


def _watch_cli(drop: Path, proj: Path, debounce: float) -> tuple[subprocess.Popen, Lines]:
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "watch", str(drop), "--bevy", str(proj), "--json",
                             "--debounce", str(debounce)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = Lines(proc.stdout)
    try:
        ready = lines.next_event(60)
    except BaseException:
        proc.kill()
        raise
    assert ready["event"] == "ready"
    return proc, lines


def _interrupt(proc) -> tuple[int, str]:
    """Ctrl-C the watcher; its exit code and stderr (killed if it does not stop in time)."""
    try:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=STOP_WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
    return rc, proc.stderr.read()


def test_cli_stops_cleanly_on_sigint_and_deploys_each_file_once(dirs):
    drop, proj = dirs
    # Run 1: a.png is deployed; b.png lands just before Ctrl-C and is still in its quiet time.
    proc, lines = _watch_cli(drop, proj, debounce=1.0)
    try:
        (drop / "a.png").write_bytes(png_bytes(50))
        ev = lines.next_event()
        assert ev["event"] == "deployed" and ev["asset"] == "sprites/a.png"
        (drop / "b.png").write_bytes(png_bytes(51, size=32))
    finally:
        rc1, err1 = _interrupt(proc)
    run1 = [ev, *lines.rest()]
    assert rc1 == 0, err1  # the command documents 0 for a clean stop, Ctrl-C included
    assert "Traceback" not in err1 and "interrupted" not in err1
    deployed1 = [e["asset"] for e in run1 if e["event"] == "deployed"]
    assert deployed1[0] == "sprites/a.png" and set(deployed1) <= {"sprites/a.png", "sprites/b.png"}
    assert f"stopped: {len(deployed1)} deployed, 0 duplicates, 0 failed" in err1
    # Nothing half-written: no temp files from the atomic writes, every PNG whole and exact.
    assets = proj / "assets"
    leftovers = [p for p in assets.rglob("*") if p.is_file() and (p.name.endswith(".tmp") or p.name.startswith("."))]
    assert leftovers == []
    for asset in deployed1:
        src = drop / Path(asset).name
        np.testing.assert_array_equal(np.asarray(Image.open(assets / asset)), np.asarray(Image.open(src)))
    assert sorted(e["path"] for e in manifest(proj)) == sorted(deployed1)

    # Run 2: whatever the signal left undone is picked up; nothing is deployed twice.
    proc, lines = _watch_cli(drop, proj, debounce=0.2)
    try:
        (drop / "c.png").write_bytes(png_bytes(52))
        want2 = {"sprites/c.png"} | ({"sprites/b.png"} - set(deployed1))
        deployed2 = []
        while set(deployed2) != want2:
            ev = lines.next_event()
            if ev["event"] == "deployed":
                assert ev["asset"] in want2 and ev["asset"] not in deployed2, ev
                deployed2.append(ev["asset"])
        time.sleep(0.5)  # room for a stray second deploy to show up
    finally:
        rc2, err2 = _interrupt(proc)
    assert rc2 == 0, err2
    assert [e for e in lines.rest() if e["event"] in ("deployed", "duplicate", "failed")] == []
    entries = manifest(proj)
    assert sorted(e["path"] for e in entries) == ["sprites/a.png", "sprites/b.png", "sprites/c.png"]
    assert all(e["exports"] == 1 for e in entries), entries
    assert sorted(deployed1 + deployed2) == ["sprites/a.png", "sprites/b.png", "sprites/c.png"]
    assert [p for p in assets.rglob("*") if p.is_file() and p.name.endswith(".tmp")] == []


def test_watch_refuses_at_start_what_would_loop_scatter_or_fail_every_file(tmp_path):
    """A watched folder that overlaps the game's assets/ would deploy every asset again (with an
    upscale, doubling it each time); a folder that is not the game's, or a bad option, would
    fail every file later: each is refused before anything is written."""
    from comfy_nodes.pixel.errors import ExportError, InvalidArgumentError

    game = tmp_path / "game"
    (game / "assets" / "sprites").mkdir(parents=True)
    (game / "Cargo.toml").write_text('[dependencies]\nbevy = "0.16"\n')
    drop = tmp_path / "drop"
    drop.mkdir()
    for folder in (game / "assets" / "sprites", game / "assets", game):
        with pytest.raises(InvalidArgumentError, match="overlap: every deployed asset would be picked up"):
            Watcher(folder, game, upscale=2)
    with pytest.raises(ExportError, match="assets is not a Bevy project: it holds no Cargo.toml"):
        Watcher(drop, game / "assets")
    (tmp_path / "notgame").mkdir()
    with pytest.raises(ExportError, match="notgame is not a Bevy project"):
        Watcher(drop, tmp_path / "notgame")
    for kw, message in (({"upscale": 0}, "upscale must be a whole number 1..64"),
                        ({"debounce": float("nan")}, "debounce must be 0..60 seconds"),
                        ({"overwrite": "merge"}, "unknown overwrite policy 'merge'")):
        with pytest.raises(InvalidArgumentError, match=message):
            Watcher(drop, game, **kw)
    assert sorted(p.name for p in (game / "assets").iterdir()) == ["sprites"]
    assert not (tmp_path / "notgame" / "assets").exists()
    r = subprocess.run([sys.executable, "-m", "orchestrator", "watch", str(game / "assets"), "--bevy", str(game)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "overlap" in r.stderr and "Traceback" not in r.stderr


def test_same_content_name_clashes_and_a_lost_folder(dirs):
    """The same content under a new name is deployed once, but only while its asset still holds
    it; a file with an asset of its own keeps it up to date; two files that map to one asset
    name do not silently replace each other; a watched folder that disappears is reported."""
    drop, proj = dirs
    red, blue, green = png_bytes(31), png_bytes(32), png_bytes(33)
    rec = Recorder()
    w = Watcher(drop, proj, debounce=0.05, on_event=rec)
    w.start()
    try:
        rec.wait_for("ready")
        (drop / "hero.png").write_bytes(red)
        rec.wait_for("deployed", 1)
        (drop / "hero.png").write_bytes(blue)  # the asset now holds blue only
        rec.wait_for("deployed", 2)
        (drop / "hero_red.png").write_bytes(red)  # red is in the game no more: deployed, not skipped
        rec.wait_for("deployed", 3)
        (drop / "enemy.png").write_bytes(green)
        rec.wait_for("deployed", 4)
        (drop / "hero.png").write_bytes(green)  # matches enemy.png, yet hero.png's asset follows it
        rec.wait_for("deployed", 5)
        (drop / "tree.png").write_bytes(png_bytes(34))
        rec.wait_for("deployed", 6)
        Image.open(io.BytesIO(png_bytes(35))).convert("RGB").save(drop / "tree.jpg")  # also sprites/tree.png
        rec.wait_for("failed", 1)
    finally:
        w.stop()
    assert [e["asset"] for e in rec.of("deployed")] == ["sprites/hero.png", "sprites/hero.png", "sprites/hero_red.png",
                                                         "sprites/enemy.png", "sprites/hero.png", "sprites/tree.png"]
    assert rec.of("duplicate") == []
    def pixels(data_or_path):
        src = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
        return np.asarray(Image.open(src).convert("RGBA"))

    assert np.array_equal(pixels(proj / "assets" / "sprites" / "hero.png"), pixels(green))
    assert "its asset name sprites/tree.png is already the asset of tree.png" in rec.of("failed")[0]["error"]
    assert np.array_equal(pixels(proj / "assets" / "sprites" / "tree.png"), pixels(png_bytes(34)))
    # the watched folder deleted under the watcher: reported, and the CLI exits 1
    gone = proj.parent / "gone"
    gone.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "watch", str(gone), "--bevy", str(proj)],
                            stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)
        gone.rmdir()
        assert proc.wait(30) == 1
        assert "the watched folder is gone; watching stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_file_names_in_any_script_keep_their_letters():
    from orchestrator.watch import asset_path_for

    assert asset_path_for("勇者.png", "sprites") == "sprites/勇者.png"
    assert asset_path_for("魔王.webp", "sprites") == "sprites/魔王.png"
    assert asset_path_for("Ärger.png", "") == "Ärger.png"
    # the decomposed form macOS writes is the same name
    assert asset_path_for("A\u0308rger.png", "") == "Ärger.png"
    assert asset_path_for("ünï cødé (1).png", "s") == "s/ünï_cødé_1_.png"
    with pytest.raises(Exception, match="cannot name an asset after"):
        asset_path_for("!!!.png", "s")


def test_a_surprise_while_deploying_one_file_is_reported_and_watching_goes_on(dirs, tmp_path):
    """The state file cannot be written (a file stands where its folder goes): that file's
    deploy is reported failed, and the next one is still deployed (the thread died before)."""
    drop, proj = dirs
    blocker = tmp_path / "st"
    rec = Recorder()
    w = Watcher(drop, proj, state_file=blocker / "state.json", debounce=0.1, on_event=rec)
    w.start()
    try:
        rec.wait_for("ready")
        import shutil

        shutil.rmtree(blocker, ignore_errors=True)
        blocker.write_text("a file where the state folder goes")
        (drop / "one.png").write_bytes(png_bytes(11))
        rec.wait_for("failed", 1)
        blocker.unlink()
        (drop / "two.png").write_bytes(png_bytes(12))
        rec.wait_for("deployed", 1)
    finally:
        w.stop()
    assert "FileExistsError" in rec.of("failed")[0]["error"] or "NotADirectoryError" in rec.of("failed")[0]["error"]
    (deployed,) = rec.of("deployed")
    assert deployed["asset"].endswith("two.png") and (proj / "assets" / deployed["asset"]).is_file()


def test_an_absolute_asset_folder_is_refused_not_read_as_relative(dirs):
    from comfy_nodes.pixel.errors import PathEscapeError

    drop, proj = dirs
    with pytest.raises(PathEscapeError, match="absolute paths are not allowed"):
        Watcher(drop, proj, asset_dir="/abs")


def _animated_reported_still_deployed(dirs, animated: str, write_animated, write_still) -> Path:
    """Watch ``dirs``: ``write_animated(path)`` makes ``animated`` in the drop folder, then
    ``write_still(folder)`` a still ``still.*``; the first must be reported as an animation and
    not deployed, the second deployed as sprites/still.png. Returns the project."""
    drop, proj = dirs
    rec = Recorder()
    w = Watcher(drop, proj, asset_dir="sprites/", debounce=0.1, on_event=rec)
    w.start()
    try:
        rec.wait_for("ready")
        write_animated(drop / animated)
        rec.wait_for("failed", 1)
        write_still(drop)
        rec.wait_for("deployed", 1)
    finally:
        w.stop()
    (failed,) = rec.of("failed")
    assert failed["file"] == str(drop / animated)
    assert "is an animation of 3 frames, and deploy writes one still image" in failed["error"]
    assert [e["asset"] for e in rec.of("deployed")] == ["sprites/still.png"]
    return proj


def test_an_animated_file_is_reported_not_deployed_as_its_first_frame(dirs):
    """An animated WebP or APNG (ComfyUI's SaveAnimatedWEBP / SaveAnimatedPNG) used to reach the
    game as its first frame alone, reported as deployed."""
    frames = [Image.fromarray(np.full((8, 8, 4), (40 * i, 90, 200, 255), np.uint8), "RGBA") for i in range(3)]
    proj = _animated_reported_still_deployed(
        dirs, "run.webp",
        lambda p: frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, lossless=True),
        lambda folder: (folder / "still.png").write_bytes(png_bytes(40)))
    assert not (proj / "assets" / "sprites" / "run.png").exists()


def test_gif_files_are_watched_an_animated_one_reported_a_still_one_deployed(dirs, tmp_path):
    """A .gif was not looked at: an animated GIF was never reported (the README: watch reports an
    animated GIF, APNG or WebP and goes on) and a still one never deployed."""
    assert is_candidate_name("walk.gif") and is_candidate_name("sub/Idle.GIF")
    frames = [Image.fromarray(np.full((8, 8, 3), (40 * i, 90, 200), np.uint8), "RGB") for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    whole = buf.getvalue()
    part = tmp_path / "part.gif"
    part.write_bytes(whole[: len(whole) - 20] + b";")
    assert not is_complete_image(part)
    part.write_bytes(whole)
    assert is_complete_image(part)

    proj = _animated_reported_still_deployed(dirs, "walk.gif", lambda p: p.write_bytes(whole),
                                             lambda folder: frames[1].save(folder / "still.gif"))
    assert Image.open(proj / "assets" / "sprites" / "still.png").format == "PNG"


def corrupt_png(seed: int) -> bytes:
    """A PNG whose signature, chunk CRCs and IEND are right (so it looks finished) but whose
    image data is no zlib stream: the kind of file no restart will make readable."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    junk = np.random.default_rng(seed).integers(0, 256, size=64, dtype=np.uint8).tobytes()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", b"no zlib" + junk) + chunk(b"IEND", b""))


def test_a_corrupt_file_is_reported_once_across_restarts_until_it_changes(dirs):
    drop, proj = dirs
    state_dir = proj / "assets" / ".dgx-pixels"
    # Run 1: the corrupt file fails and the failure is kept in the state file.
    proc, lines = _watch_cli(drop, proj, debounce=0.1)
    try:
        (drop / "bad.png").write_bytes(corrupt_png(1))
        ev = lines.next_event()
        assert ev["event"] == "failed" and ev["file"] == str(drop / "bad.png")
        assert "is not a readable image" in ev["error"]
    finally:
        rc, err = _interrupt(proc)
    assert rc == 0 and "stopped: 0 deployed, 0 duplicates, 1 failed, 0 ignored\n" in err, err

    # Run 2 (plain output): the unchanged file is said to be skipped, not failed again.
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "watch", str(drop), "--bevy", str(proj),
                             "--debounce", "0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said = Lines(proc.stderr)
    try:
        first = said.q.get(timeout=60)
        assert first.startswith("watching "), first
        line = said.q.get(timeout=20)
        time.sleep(0.5)  # room for a stray second report
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=STOP_WAIT)
    said.t.join(10)
    rest = "".join(said.q.get() for _ in range(said.q.qsize()))
    assert rc == 0
    assert line.startswith(f"skipped {drop / 'bad.png'}: failed before and unchanged since; edit or replace it "
                           f"to try again (it failed with: {drop / 'bad.png'} is not a readable image"), line
    assert "FAILED" not in rest and "stopped: 0 deployed, 0 duplicates, 0 failed, 0 ignored, 1 skipped as failed before" in rest
    # kept by content, in the state file replaced atomically (no temporary file left beside it)
    (state,) = state_dir.glob("watch-*.json")
    kept = json.loads(state.read_text())["failed"]["bad.png"]
    assert kept["sha256"] == hashlib.sha256(corrupt_png(1)).hexdigest()
    # (and the lock that keeps a second watcher off this state)
    assert sorted(p.name for p in state_dir.iterdir()) == [state.name, state.name + ".lock"]

    # Run 3: replaced while down by other broken bytes, it is tried (and fails) again; then
    # replaced by a good image while watching, it is deployed and forgotten as a failure.
    (drop / "bad.png").write_bytes(corrupt_png(2))
    proc, lines = _watch_cli(drop, proj, debounce=0.1)
    try:
        ev = lines.next_event()
        assert ev["event"] == "failed" and ev["file"] == str(drop / "bad.png"), ev
        (drop / "bad.png").write_bytes(png_bytes(60))
        ev = lines.next_event()
        assert ev["event"] == "deployed" and ev["asset"] == "sprites/bad.png", ev
    finally:
        rc, err = _interrupt(proc)
    assert rc == 0 and "1 deployed, 0 duplicates, 1 failed" in err, err
    assert json.loads(state.read_text())["failed"] == {}


def test_touching_a_failed_file_does_not_fail_it_again(dirs):
    """Within one run too: the same bytes saved again say skipped; a state file from before
    failures were kept still loads."""
    drop, proj = dirs
    state = proj / "state.json"
    state.write_text(json.dumps({"version": 1, "folder": str(drop.resolve()), "files": {}, "hashes": {}}))
    rec = Recorder()
    w = Watcher(drop, proj, state_file=state, debounce=0.05, on_event=rec)
    w.start()
    try:
        rec.wait_for("ready")
        (drop / "bad.png").write_bytes(corrupt_png(3))
        rec.wait_for("failed", 1)
        time.sleep(0.05)  # a new mtime, whatever the file system's time resolution
        (drop / "bad.png").write_bytes(corrupt_png(3))  # saved again, the same bytes
        rec.wait_for("skipped", 1)
    finally:
        w.stop()
    assert len(rec.of("failed")) == 1 and w.stats.failed == 1 and w.stats.skipped == 1
    (skipped,) = rec.of("skipped")
    assert skipped["file"] == str(drop / "bad.png") and "is not a readable image" in skipped["error"]
    kept = json.loads(state.read_text())["failed"]["bad.png"]
    assert kept["mtime_ns"] == (drop / "bad.png").stat().st_mtime_ns


def _run_watcher(drop: Path, proj: Path, act, until: str, n: int = 1, **kw) -> Recorder:
    """A watcher started on ``drop``, ``act()`` once it is ready, stopped after ``n`` ``until`` events."""
    rec = Recorder()
    w = Watcher(drop, proj, debounce=0.05, on_event=rec, **kw)
    w.start()
    try:
        rec.wait_for("ready")
        act()
        rec.wait_for(until, n)
    finally:
        w.stop()
    rec.stats = w.stats
    return rec


def _idle_watcher(drop: Path, proj: Path, seconds: float, **kw) -> Recorder:
    """A watcher started on ``drop`` and stopped ``seconds`` after it is ready: what it said."""
    rec = Recorder()
    w = Watcher(drop, proj, debounce=0.05, on_event=rec, **kw)
    w.start()
    try:
        rec.wait_for("ready")
        time.sleep(seconds)
    finally:
        w.stop()
    return rec


def test_a_file_that_is_no_image_fails_at_once_and_is_remembered(dirs):
    """A text file named .png waited silently for 10 minutes as an image still being written,
    then was "ignored", and so again after every restart. Its first bytes rule out every
    image format: it fails at once, naming the problem, and a restart reports it as skipped."""
    drop, proj = dirs
    t0 = time.monotonic()
    rec = _run_watcher(drop, proj, lambda: (drop / "notes.png").write_text("hello, these are my notes\n"), "failed")
    assert time.monotonic() - t0 < 10
    (ev,) = rec.of("failed")
    assert ev["file"] == str(drop / "notes.png") and "is not a readable image" in ev["error"]
    rec2 = _run_watcher(drop, proj, lambda: None, "skipped")
    assert rec2.of("skipped")[0]["file"] == str(drop / "notes.png") and not rec2.of("failed")


def test_overwrite_keep_says_kept_not_deployed_and_does_not_try_again(dirs):
    """With --overwrite keep and the game's own sprites/hero.png, the watcher said "deployed"
    while the game kept its file; it says "kept", counts it apart, and a restart leaves it."""
    drop, proj = dirs
    mine = proj / "assets" / "sprites" / "hero.png"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(png_bytes(1))
    before = mine.read_bytes()
    rec = _run_watcher(drop, proj, lambda: (drop / "hero.png").write_bytes(png_bytes(2)), "kept", overwrite="keep")
    assert [e["asset"] for e in rec.of("kept")] == ["sprites/hero.png"] and not rec.of("deployed")
    assert (rec.stats.kept, rec.stats.deployed) == (1, 0)
    assert mine.read_bytes() == before and manifest(proj) == []
    rec2 = _idle_watcher(drop, proj, 0.5, overwrite="keep")
    assert not rec2.of("kept") and not rec2.of("deployed")


@pytest.mark.parametrize("damage", ["cut", "deleted"])
def test_a_damaged_or_lost_state_checks_every_image_again(dirs, damage):
    """A state file cut short (or deleted) was read as a first start: the images in the folder
    became its baseline, and one that arrived while the watcher was down never reached the
    game. Now it is said, and every image is checked again: the new one is deployed, and the
    one deployed before is found in the manifest (no second export)."""
    drop, proj = dirs
    rec = _run_watcher(drop, proj, lambda: (drop / "one.png").write_bytes(png_bytes(3)), "deployed")
    state = Watcher(drop, proj).state_path
    (drop / "while_down.png").write_bytes(png_bytes(4))
    if damage == "cut":
        state.write_bytes(state.read_bytes()[:50])
    else:
        state.unlink()
    rec2 = _run_watcher(drop, proj, lambda: None, "deployed", n=2)
    (warning,) = rec2.of("warning")
    why = "it cannot be read" if damage == "cut" else "it is gone, and the game's manifest holds assets this folder gave"
    assert warning["message"].startswith(f"the watch state {state}: {why}")
    got = {e["asset"]: e["already"] for e in rec2.of("deployed")}
    assert got == {"sprites/one.png": True, "sprites/while_down.png": False}
    assert {e["path"]: e["exports"] for e in manifest(proj)} == {"sprites/one.png": 1, "sprites/while_down.png": 1}


def test_a_genuine_first_start_leaves_the_folder_alone_without_a_warning(dirs):
    drop, proj = dirs
    (drop / "old.png").write_bytes(png_bytes(5))
    rec = _idle_watcher(drop, proj, 0.4)
    assert not rec.of("warning") and not rec.of("deployed")


def test_an_asset_folder_in_the_records_folder_is_refused_at_the_start(dirs):
    from comfy_nodes.pixel.errors import PathEscapeError

    drop, proj = dirs
    for bad in (".dgx-pixels/", ".DGX-Pixels/sub/"):
        with pytest.raises(PathEscapeError, match="holds DGX-Pixels' own records"):
            Watcher(drop, proj, asset_dir=bad)


def test_a_second_watcher_on_the_same_folder_and_game_is_refused(dirs):
    """Two watchers of one folder into one game each deployed every file and wrote over each
    other's state; the second is refused while the first runs, and starts once it stopped."""
    from orchestrator.watch import WatchBusyError

    drop, proj = dirs
    first = Watcher(drop, proj, debounce=0.05)
    first.start()
    try:
        second = Watcher(drop, proj, debounce=0.05)
        with pytest.raises(WatchBusyError, match=r"^another dgx-pixels watch is deploying .* \(its state .* is locked\)"):
            second.start()
    finally:
        first.stop()
    third = Watcher(drop, proj, debounce=0.05)
    third.start()
    third.stop()


def test_a_file_name_no_asset_can_take_is_said_without_a_class_name(dirs):
    drop, proj = dirs
    rec = _run_watcher(drop, proj, lambda: (drop / "___.png").write_bytes(png_bytes(6)), "failed")
    (ev,) = rec.of("failed")
    assert ev["error"].startswith("cannot name an asset after '___.png'"), ev["error"]


def test_the_images_a_first_start_left_alone_are_counted_and_a_later_existing_deploys_them(dirs):
    """A first start without --existing left the folder's images alone without a word, and a
    later --existing was silently ignored; now the start counts them and --existing on a later
    start deploys them."""
    drop, proj = dirs
    (drop / "old1.png").write_bytes(png_bytes(41))
    (drop / "old2.png").write_bytes(png_bytes(42))
    rec = _idle_watcher(drop, proj, 0.3)
    assert rec.of("ready")[0]["left_alone"] == 2 and not rec.of("deployed")
    rec2 = _run_watcher(drop, proj, lambda: None, "deployed", n=2, existing=True)
    assert sorted(e["asset"] for e in rec2.of("deployed")) == ["sprites/old1.png", "sprites/old2.png"]
    assert rec2.of("ready")[0]["left_alone"] == 0


def test_cli_watch_takes_a_bevy_version_for_a_plain_folder(tmp_path):
    """The refusal of a folder without Cargo.toml hinted at --bevy-version, which watch did not
    have; it has it now, as export does."""
    drop = tmp_path / "drop"
    drop.mkdir()
    plain = tmp_path / "plain"
    plain.mkdir()
    cmd = [sys.executable, "-m", "orchestrator", "watch", str(drop), "--bevy", str(plain), "--json", "--debounce", "0.05"]
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 6 and "--bevy-version" in refused.stderr, refused.stderr
    proc = subprocess.Popen(cmd + ["--bevy-version", "0.15"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = Lines(proc.stdout)
    try:
        assert lines.next_event(60)["event"] == "ready"
        (drop / "a.png").write_bytes(png_bytes(43))
        ev = lines.next_event(30)
        assert ev["event"] == "deployed" and ev["asset"] == "sprites/a.png", ev
    finally:
        rc, err = _interrupt(proc)
    assert rc == 0, err
    assert "Nearest" in (plain / "assets" / "sprites" / "a.png.meta").read_text()
