"""Photo intake of a 12-megapixel phone photo: time and peak memory, JPEG and HEIC.

Run: ``.venv/bin/python benchmarks/photo_intake.py`` (``make bench`` calls it). Each format is
measured in a fresh process so that peak memory (ru_maxrss) belongs to one intake only; the
figure reported is the peak minus the process's resident size just before the intake.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = (4000, 3000)  # 12 MP, as phones shoot


def make_photo(fmt: str) -> bytes:
    """A 12 MP photo with detail (noise and gradients compress like a real scene) and EXIF."""
    from PIL import Image, ImageDraw

    base = Image.effect_noise(SIZE, 48).convert("RGB")
    overlay = Image.linear_gradient("L").resize(SIZE).convert("RGB")
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


def measure_one(path: str, repeats: int) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supervision.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile

    from supervision import photos

    data = Path(path).read_bytes()
    photos.prepare_photo(SimpleUploadedFile("warm.jpg", data))  # imports and codecs loaded
    # Reset the peak (VmHWM): ru_maxrss of a child also remembers its parent's size at fork, so a
    # large parent (make bench, after the page runs) would show as this intake's peak.
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
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


def _rss_kb(field: str = "VmRSS:") -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def main(repeats: int = 5) -> dict:
    results = {}
    workdir = ROOT / "benchmarks" / ".photos"
    workdir.mkdir(exist_ok=True)
    for fmt in ("jpeg", "heic"):
        path = workdir / f"12mp.{fmt}"
        if not path.exists():
            path.write_bytes(make_photo(fmt))
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(path), str(repeats)],
            check=True,
            capture_output=True,
            text=True,
        )
        results[fmt] = json.loads(out.stdout)
    return {
        "jpeg_12mp_ms": results["jpeg"]["ms_median"],
        "heic_12mp_ms": results["heic"]["ms_median"],
        "peak_mb": max(results["jpeg"]["peak_mb"], results["heic"]["peak_mb"]),
        "detail": results,
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        print(json.dumps(measure_one(sys.argv[2], int(sys.argv[3]))))
    else:
        print(json.dumps(main(), indent=2, ensure_ascii=False))
