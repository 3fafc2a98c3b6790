"""Photo intake: one 12-megapixel phone photo, the worst request the caps accept, and /healthz
while two of those are being decoded.

Run: ``.venv/bin/python benchmarks/photo_intake.py`` (``make bench`` calls ``main``).

1. A 12 MP phone photo, JPEG and HEIC: time and peak memory of ``prepare_photo``.
2. The worst accepted request: the most photos a form takes (9) with the most pixels the caps
   admit (``PHOTO_MAX_PIXELS_PER_REQUEST``: two 49 MP HEIC photos, HEIC being the slowest to
   decode, and seven of 3.1 MP), through ``prepare_photos`` as a form does it: wall time, peak
   resident size, and what the process keeps afterwards (with and without ``malloc_trim``).
3. gunicorn (gunicorn.conf.py, 3 workers) on a fresh SQLite database: two of those requests
   posted at once as patrols (/patrols/new/, whose photos are decoded in the request) while
   /healthz and the home page are asked every 50 ms; the latency of those, and the workers'
   resident size afterwards. And an issue filed with nine 12 MP HEIC photos, which the request
   only checks and stores (the worker converts them): how long the supervisor waits.

Each in-process figure comes from a fresh process, so that its peak (VmHWM, reset before the
intake) belongs to one intake only; figures are minus the process's size just before.

``--before REV`` measures the same with the photo intake of an older commit (``git show`` and
``git archive``: the working tree and git state are not touched), and adds the request that an
outside test sent before the caps: a patrol with 72 photos of 49 MP (PNG, 5 KB each).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "benchmarks" / ".photos"
SIZE = (4000, 3000)  # 12 MP, as phones shoot
# The worst accepted request: 9 photos, 2 × 49 MP + 7 × 3.14 MP = 119.98 MP (cap: 120 MP).
BIG, SMALL = (7000, 7000), (1772, 1772)
WORST = [BIG] * 2 + [SMALL] * 7
PATROL_ITEMS = ["quality", "progress", "safety", "fencing", "dust", "noise", "debris", "access"]


# --- photos ------------------------------------------------------------------------------------


def make_photo(fmt: str, size: tuple[int, int] = SIZE, grain: int = 1) -> bytes:
    """A photo with detail (noise and gradients compress like a real scene) and EXIF; noise in
    ``grain``-pixel specks (a 49 MP photo of single-pixel noise would not fit in 20 MB)."""
    from PIL import Image, ImageDraw

    noise = Image.effect_noise((size[0] // grain, size[1] // grain), 48).resize(size)
    base = noise.convert("RGB")
    overlay = Image.linear_gradient("L").resize(size).convert("RGB")
    image = Image.blend(base, overlay, 0.5)
    ImageDraw.Draw(image).rectangle([400, 400, 1600, 1400], fill=(200, 60, 40))
    exif = image.getexif()
    exif[0x0112] = 6
    exif[0x8825] = {1: "N", 2: (27.0, 46.0, 48.0), 3: "E", 4: (120.0, 39.0, 36.0)}
    out = io.BytesIO()
    if fmt == "heic":
        import pillow_heif

        pillow_heif.register_heif_opener()
        image.save(out, "HEIF", quality=70, exif=exif.tobytes())
    else:
        image.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def _cached(name: str, make) -> bytes:
    PHOTOS.mkdir(parents=True, exist_ok=True)
    path = PHOTOS / name
    if not path.exists():
        path.write_bytes(make())
    return path.read_bytes()


def worst_request() -> list[tuple[str, bytes]]:
    """The nine photos of the worst accepted request (made once, kept in benchmarks/.photos:
    encoding a 49 MP HEIC takes about 20 s)."""
    big = _cached("worst-49mp.heic", lambda: make_photo("heic", BIG, grain=8))
    small = _cached("worst-3mp.heic", lambda: make_photo("heic", SMALL, grain=2))
    return [(f"IMG_{n:04d}.HEIC", big if size == BIG else small) for n, size in enumerate(WORST)]


def nine_phone_heics() -> list[tuple[str, bytes]]:
    """Nine 12 MP iPhone photos: what a supervisor sends with a full issue form."""
    data = _cached("12mp.heic", lambda: make_photo("heic"))
    return [(f"IMG_{n:04d}.HEIC", data) for n in range(9)]


def bomb_png(size: tuple[int, int] = BIG) -> bytes:
    """A 1-bit PNG of one colour: 5 KB on the wire, 49 MP once decoded."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("1", size).save(out, "PNG", optimize=True)
    return out.getvalue()


def attack_request() -> dict[str, list[tuple[str, bytes]]]:
    """What the outside test posted to the patrol form: 9 photos of 49 MP on each of 8 items."""
    data = bomb_png()
    return {f"photos-{item}": [(f"{item}{n}.png", data) for n in range(9)] for item in PATROL_ITEMS}


# --- in a fresh process: one request's intake --------------------------------------------------


def _rss_kb(field: str = "VmRSS:", pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    # ru_maxrss of a child also remembers its parent's size at fork, so a large parent (make
    # bench, after the page runs) would show as this intake's peak: reset VmHWM instead.
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def _load_photos(module: str):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supervision.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    if not module:
        from supervision import photos

        return photos
    spec = importlib.util.spec_from_file_location("supervision._photos_measured", module)
    photos = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = photos
    spec.loader.exec_module(photos)
    return photos


def measure_one(path: str, repeats: int) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    photos = _load_photos("")
    data = Path(path).read_bytes()
    photos.prepare_photo(SimpleUploadedFile("warm.jpg", data))  # imports and codecs loaded
    _reset_peak()
    baseline_kb = _rss_kb()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        photos.prepare_photo(SimpleUploadedFile(Path(path).name, data))
        times.append((time.perf_counter() - started) * 1000)
    peak_kb = _rss_kb("VmHWM:")
    return {
        "ms_median": round(statistics.median(times), 1),
        "ms_max": round(max(times), 1),
        "peak_mb": round(max(peak_kb - baseline_kb, 0) / 1024, 1),
        "bytes": len(data),
    }


def measure_request(kind: str, module: str = "", trim: bool = True) -> dict:
    """One request's photos through the intake of ``module`` (default: the current one), as
    its form does it: ``worst`` (the issue form's nine) or ``attack`` (the patrol's 72)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    photos = _load_photos(module)
    if not trim:
        photos._TRIM = None
    warm = make_photo("jpeg", (800, 600))
    photos.prepare_photos([SimpleUploadedFile("warm.jpg", warm)])
    fields = {"photos": worst_request()} if kind == "worst" else attack_request()
    uploads = {
        name: [SimpleUploadedFile(n, data) for n, data in files] for name, files in fields.items()
    }
    _reset_peak()
    baseline_kb = _rss_kb()
    started = time.perf_counter()
    refused = ""
    try:
        if hasattr(photos, "check_photos"):  # the patrol form: one check for all its pickers
            photos.check_photos([f for files in uploads.values() for f in files])
        for files in uploads.values():
            photos.prepare_photos(files)
    except photos.PhotoError as error:
        refused = str(error)[:60]
    seconds = time.perf_counter() - started
    return {
        "photos": sum(len(files) for files in uploads.values()),
        "megapixels": round(sum(_pixels(data) for fs in fields.values() for _n, data in fs) / 1e6),
        "seconds": round(seconds, 2),
        "peak_mb": round((_rss_kb("VmHWM:") - baseline_kb) / 1024),
        "kept_mb": round((_rss_kb() - baseline_kb) / 1024),
        "refused": refused,
    }


def _pixels(data: bytes) -> int:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.width * image.height


def _in_fresh_process(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- a real gunicorn ---------------------------------------------------------------------------


SETUP = """
import json
import django
django.setup()
from django.conf import settings
from django.test import Client
from tests.factories import make_world
world = make_world()
client = Client()
client.force_login(world.alice)
print(json.dumps({
    "session": client.cookies[settings.SESSION_COOKIE_NAME].value,
    "project": world.project.pk,
}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def photo_server(workers: int = 3, root: Path = ROOT) -> Iterator[dict]:
    """gunicorn with gunicorn.conf.py (``workers`` sync workers) serving ``root`` on a free
    port, production settings over plain HTTP, a fresh SQLite database holding the test world
    (tests/factories.py) and a logged-in session of Alice, a supervisor of its project."""
    workdir = Path(tempfile.mkdtemp(prefix="photo-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "supervision.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_SECURE_COOKIES": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "MEDIA_ROOT": str(workdir / "media"),
        "STATIC_ROOT": str(workdir / "static"),
        "SQLITE_PATH": str(workdir / "photos.sqlite3"),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": "1",
    }
    for name in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE", "CACHE_URL"):
        env.pop(name, None)
    python = sys.executable
    server = None
    try:
        for args in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
            subprocess.run(
                [python, "manage.py", *args],
                cwd=root,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        made = subprocess.run(
            [python, "-c", SETUP], cwd=root, env=env, check=True, capture_output=True, text=True
        )
        world = json.loads(made.stdout.strip().splitlines()[-1])
        server = subprocess.Popen(
            [python, "-m", "gunicorn", "supervision.wsgi", "-c", "gunicorn.conf.py"],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).read()
                break
            except (urllib.error.URLError, OSError):
                if server.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not answer /healthz")
        yield {**world, "base": base, "master": server.pid, "media": workdir / "media"}
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck worker
                server.kill()
                server.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def workers_of(master: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == master:
                        children.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return sorted(children)


def multipart(fields: dict[str, str], files: dict[str, list[tuple[str, bytes]]]) -> tuple:
    boundary = secrets.token_hex(16)
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, items in files.items():
        for filename, data in items:
            parts.append(
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                    f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                ).encode()
                + data
                + b"\r\n"
            )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post(server: dict, path: str, fields: dict, files: dict, timeout: float = 600) -> int:
    """A logged-in POST, as a browser sends the form (CSRF cookie and header), not redirected."""
    body, content_type = multipart(fields, files)
    csrf = secrets.token_hex(16)  # a 32-character secret of our own, in cookie and header alike
    request = urllib.request.Request(
        server["base"] + path,
        data=body,
        method="POST",
        headers={
            "Content-Type": content_type,
            "Cookie": f"sessionid={server['session']}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Referer": server["base"] + path,
        },
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def issue_fields(n: int) -> dict[str, str]:
    return {
        "token": f"bench-{n}-{secrets.token_hex(4)}",
        "category": "quality",
        "urgency": "normal",
        "title": "外墙涂料起皮",
        "description": "北面外墙涂料起皮，一碰就掉。",
    }


def patrol_fields() -> dict[str, str]:
    fields = {"note": "总体文明施工。"}
    for item in PATROL_ITEMS:
        fields[f"check-{item}"] = "problem"
        fields[f"note-{item}"] = "见照片"
    return fields


def concurrent_uploads(
    server: dict, kind: str = "worst", uploads: int = 2, *, ping: bool = True
) -> dict:
    """``uploads`` requests at once (``worst``: a patrol with the nine worst photos; ``nine_heic``:
    an issue with nine phone photos; ``attack``: the patrol's 72), while /healthz and the home page are asked every 50 ms until they are done.
    Returns the statuses, how long each upload took, and the latency of the others."""
    if kind == "worst":
        # An issue's HEIC photos are decoded by the worker, a patrol's in the request: the
        # worst request a web worker decodes is a patrol's nine.
        path, files = "/patrols/new/", {"photos-quality": worst_request()}
    elif kind == "nine_heic":
        path, files = "/issues/new/", {"photos": nine_phone_heics()}
    else:
        path, files = "/patrols/new/", attack_request()
    results: list = [None] * uploads
    done = threading.Event()

    def upload(n: int) -> None:
        fields = issue_fields(n) if kind == "nine_heic" else patrol_fields()
        fields["project"] = str(server["project"])
        started = time.perf_counter()
        status = post(server, path, fields, files)
        results[n] = (status, time.perf_counter() - started, time.perf_counter())

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(uploads)]
    pings: dict[str, list] = {"/healthz": [], "/": []}

    def pings_until_done() -> None:
        while not done.is_set():
            for page, seen in pings.items():
                started = time.perf_counter()
                try:
                    with urllib.request.urlopen(server["base"] + page, timeout=60) as response:
                        status = response.status
                except urllib.error.HTTPError as error:
                    status = error.code
                finished = time.perf_counter()
                # Counted only while every upload is still in flight.
                seen.append((status, finished - started, finished, None in results))
            time.sleep(0.05)

    pinger = threading.Thread(target=pings_until_done)
    for thread in threads:
        thread.start()
    if ping:
        time.sleep(0.2)  # the uploads are on their way (a few MB over loopback)
        pinger.start()
    for thread in threads:
        thread.join()
    done.set()
    if ping:
        pinger.join()
    first_done = min(r[2] for r in results)
    during = {page: [s for s in seen if s[2] < first_done and s[3]] for page, seen in pings.items()}
    return {
        "statuses": [r[0] for r in results],
        "upload_s": [round(r[1], 2) for r in results],
        "pings": during,
    }


def measure_server(root: Path = ROOT, kind: str = "worst") -> dict:
    with photo_server(workers=3, root=root) as server:
        for _ in range(3):  # every worker has answered both pages once
            for page in ("/healthz", "/"):
                urllib.request.urlopen(server["base"] + page, timeout=60).read()
        workers = workers_of(server["master"])
        before = max(_rss_kb(pid=pid) for pid in workers)
        alone = concurrent_uploads(server, kind, uploads=1, ping=False)
        # An issue's HEIC photos are converted by the worker (none runs here): the request only
        # checks and stores them. Best of three, so that a busy moment of the machine is not it.
        heic = [concurrent_uploads(server, "nine_heic", uploads=1, ping=False) for _ in range(3)]
        run = concurrent_uploads(server, kind)
        time.sleep(0.5)
        after = {pid: (_rss_kb(pid=pid), _rss_kb("VmHWM:", pid)) for pid in workers}
    latency = {
        page: [round(s[1] * 1000) for s in seen if s[0] == 200]
        for page, seen in run["pings"].items()
    }
    return {
        "statuses": [*alone["statuses"], *run["statuses"]],
        "alone_s": alone["upload_s"][0],
        "nine_heic_statuses": [r["statuses"][0] for r in heic],
        "nine_heic_filing_s": min(r["upload_s"][0] for r in heic),
        "upload_s": run["upload_s"],
        "healthz_ms_max": max(latency["/healthz"], default=None),
        "healthz_ms_p50": statistics.median(latency["/healthz"]) if latency["/healthz"] else None,
        "healthz_ms_p95": _p95(latency["/healthz"]),
        "home_ms_max": max(latency["/"], default=None),
        "home_ms_p50": statistics.median(latency["/"]) if latency["/"] else None,
        "answered_during": {page: len(values) for page, values in latency.items()},
        "worker_rss_before_mb": round(before / 1024),
        "worker_peak_mb": round(max(hwm for _rss, hwm in after.values()) / 1024),
        "worker_rss_after_mb": round(max(rss for rss, _hwm in after.values()) / 1024),
    }


def _p95(values: list[int]) -> int | None:
    return sorted(values)[int(0.95 * (len(values) - 1))] if values else None


# --- the report --------------------------------------------------------------------------------


def main(repeats: int = 5, before: str = "") -> dict:
    results = {}
    for fmt in ("jpeg", "heic"):
        path = PHOTOS / f"12mp.{fmt}"
        _cached(path.name, lambda fmt=fmt: make_photo(fmt))
        results[fmt] = _in_fresh_process("--one", str(path), str(repeats))
    worst = _in_fresh_process("--request", "worst")
    untrimmed = _in_fresh_process("--request", "worst", "--no-trim")
    attack = _in_fresh_process("--request", "attack")
    served = measure_server()
    report = {
        "jpeg_12mp_ms": results["jpeg"]["ms_median"],
        "heic_12mp_ms": results["heic"]["ms_median"],
        "peak_mb": max(results["jpeg"]["peak_mb"], results["heic"]["peak_mb"]),
        "worst_request_s": worst["seconds"],
        "nine_heic_filing_s": served["nine_heic_filing_s"],
        "worst_request_peak_mb": worst["peak_mb"],
        "worst_request_kept_mb": worst["kept_mb"],
        "healthz_ms_max_during_two": served["healthz_ms_max"],
        "home_ms_max_during_two": served["home_ms_max"],
        "detail": {
            **results,
            "worst": worst,
            "worst_without_malloc_trim": untrimmed,
            "attack": attack,
            "server": served,
        },
    }
    rows = [("now", worst, untrimmed, attack, served)]
    if before:
        rows.insert(0, _before(before))
        label, worst_before, _none, attack_before, served_before, attack_served = rows[0]
        report["detail"]["before"] = {
            "rev": before,
            "worst": worst_before,
            "attack": attack_before,
            "server": served_before,
            "server_attack": attack_served,
        }
    _print(rows)
    return report


def _before(rev: str) -> tuple:
    """The same measurements with the photo intake of ``rev``."""
    old = Path(tempfile.mkdtemp(prefix="photos-before-"))
    try:
        module = old / "photos.py"
        module.write_bytes(
            subprocess.run(
                ["git", "show", f"{rev}:supervision/photos.py"],
                cwd=ROOT,
                check=True,
                capture_output=True,
            ).stdout
        )
        worst = _in_fresh_process("--request", "worst", "--module", str(module))
        attack = _in_fresh_process("--request", "attack", "--module", str(module))
        tree = old / "tree"
        tree.mkdir()
        archive = subprocess.run(
            ["git", "archive", rev], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        served = measure_server(tree)
        served_attack = measure_server(tree, kind="attack")
        return (f"before ({rev})", worst, None, attack, served, served_attack)
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _print(rows: list) -> None:
    print("photo intake, worst accepted request (9 photos, 2 × 49 MP + 7 × 3.1 MP HEIC = 120 MP):")
    print(
        f"{'':<16}{'time s':>8}{'peak MB':>9}{'kept MB':>9}{'untrimmed':>10}"
        f"{'healthz max ms':>16}{'home max ms':>13}{'worker RSS after MB':>21}"
    )
    for label, worst, untrimmed, _attack, served, *_ in rows:
        print(
            f"{label:<16}{worst['seconds']:>8}{worst['peak_mb']:>9}{worst['kept_mb']:>9}"
            f"{(untrimmed or {}).get('kept_mb', '-'):>10}{served['healthz_ms_max']!s:>16}"
            f"{served['home_ms_max']!s:>13}{served['worker_rss_after_mb']:>21}"
        )
    for label, _worst, _untrimmed, _attack, served, *_ in rows:
        print(
            f"filing with nine 12 MP HEIC photos ({label}, through gunicorn, best of 3): "
            f"{served.get('nine_heic_filing_s', '-')} s, statuses "
            f"{served.get('nine_heic_statuses', '-')}"
        )
    print("the outside test's patrol (72 photos of 49 MP PNG):")
    for label, _worst, _untrimmed, attack, *rest in rows:
        extra = ""
        if len(rest) == 2:
            attack_served = rest[1]
            extra = (
                f", two at once: {attack_served['upload_s']} s, healthz max "
                f"{attack_served['healthz_ms_max']} ms, worker RSS after "
                f"{attack_served['worker_rss_after_mb']} MB"
            )
        outcome = f"refused ({attack['refused']})" if attack["refused"] else "accepted"
        print(
            f"  {label}: {outcome} in {attack['seconds']} s, peak {attack['peak_mb']} MB, "
            f"kept {attack['kept_mb']} MB{extra}"
        )


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--one"]:
        print(json.dumps(measure_one(args[1], int(args[2]))))
    elif args[:1] == ["--request"]:
        module = args[args.index("--module") + 1] if "--module" in args else ""
        print(json.dumps(measure_request(args[1], module, trim="--no-trim" not in args)))
    elif args[:1] == ["--server"]:
        print(json.dumps(measure_server(), indent=2))
    else:
        rev = args[args.index("--before") + 1] if "--before" in args else ""
        print(json.dumps(main(before=rev), indent=2, ensure_ascii=False))
