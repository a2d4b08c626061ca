"""The published split files of the long-tail SSL protocol: where they live upstream, their SHA-256,
and how the suite finds, verifies and (where the network allows) fetches them.

The files are not the suite's to redistribute, so it never ships them. A user's data root holds them
in the upstream layout, ``<data-root>/split/<path>`` (``split/`` is the folder name in VITA-Group/SDCLR
and Annusha/temperature_schedules; ``splits/`` is accepted too). Every file the suite reads is checked
against the checksum below: the SDCLR splits have no seed and no script, so a file that differs by one
index is a different benchmark, and the suite refuses it.

Upstream homes (pinned to the commits the checksums were taken from):

- VITA-Group/SDCLR ``split/`` (Jiang et al., "Self-Damaging Contrastive Learning", ICML 2021); the
  same files are in Annusha/temperature_schedules ``split/`` (Kukleva et al., ICLR 2023).
- facebookresearch/classifier-balancing ``data/ImageNet_LT/`` (Kang et al., "Decoupling Representation
  and Classifier for Long-Tailed Recognition", ICLR 2020; the lists of Liu et al., OLTR, CVPR 2019).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from bench.errors import UserError

SDCLR_COMMIT = "34c932ec9c2169a3c615abb1a469c0c8ecadbf86"
SDCLR_HOME = f"https://github.com/VITA-Group/SDCLR/tree/{SDCLR_COMMIT}/split"
SDCLR_RAW = f"https://raw.githubusercontent.com/VITA-Group/SDCLR/{SDCLR_COMMIT}/split"
TS_HOME = "https://github.com/Annusha/temperature_schedules (folder split/)"
CB_COMMIT = "22370c64141cc662f62ead89447c838c4a7977b5"
CB_HOME = f"https://github.com/facebookresearch/classifier-balancing/tree/{CB_COMMIT}/data/ImageNet_LT"
CB_RAW = f"https://raw.githubusercontent.com/facebookresearch/classifier-balancing/{CB_COMMIT}/data/ImageNet_LT"

#: Folder names under the data root that may hold the split files (the first is where fetches go).
SPLIT_DIRS = ("split", "splits")

#: Set to 1 to forbid network access (the tests set it through a fixture as well).
NO_DOWNLOAD_ENV = "BENCH_NO_DOWNLOAD"


@dataclass(frozen=True)
class SplitFile:
    """One upstream file: its path under ``split/``, SHA-256 (None when unknown), URL and home page.

    ``lines`` and ``classes`` are checked instead of a checksum for files whose checksum the suite does
    not know (ImageNet_LT_train.txt is too large for the reference store it was checked against).
    """

    path: str
    sha256: Optional[str]
    url: str
    home: str
    lines: Optional[int] = None
    classes: Optional[int] = None


def _sdclr(path: str, sha256: str) -> SplitFile:
    return SplitFile(path, sha256, f"{SDCLR_RAW}/{path}", f"{SDCLR_HOME} (also {TS_HOME})")


_CIFAR10_SUBSETS = {
    1: (
        "7267a3d52b2c2f340d639e225e596fad1acc6863c8ade8c9c4ceefafcfdd7cb4",
        "cad730937a5015a32482e0e04df3400de4c153a16fd6f36e74f7b2c9b87e3232",
        "9b88cb91aaf60279b0b3024a52d455222d5e8b4fe78e283907d00968a8855a0b",
    ),
    2: (
        "3137f17dd38f027f5f98212ad8e6510145934d15247a3385ed27583b18cfac94",
        "dfdabe40ca9a403e4089a98315d9605b4ff12a53b1c79e86fed2b35785c149fa",
        "9588b6cc1ff2de2e31edc1f33f4cb52e98d3e8a2a61380dbfd163593ecfce781",
    ),
    3: (
        "12ba3c0633420b9f6f3b376ff79e1360ee27ef2cfda81dee1aef0f1751007435",
        "a61ab24357043482e0fca31b805d6d07146a1cd07441682cd3a9c609bd8de7f7",
        "b0ef49b31ccb32344187f37f3528d19a2ae16c2eabe7b8cd7fea8960cc7df79e",
    ),
    4: (
        "45e26ae56f0d5256dffba5e6439e781345bb275b2366c4fd03b8c735656e2664",
        "6dd2befff7f5423d70eafe65b1cb21a936d9a4c56e2911169f29e4a2a3908a86",
        "11cb0e7eb75721a44cb72c94453ed3af7c9b1b250b5daa3928c4f96284c59d01",
    ),
    5: (
        "a6695586b18dbf6835c16f5d5b522ffedaa75845abee61ece58e559e26c9e6b9",
        "314488d5f93d221b4c38c3418bad1bea43614645d242dc3e437f910fec9cad8c",
        "b7ac94838bb476b6a903db9ac13932a61ef0594e53019d198b6cd769c15ba5e4",
    ),
}
_CIFAR100_SUBSETS = {
    1: (
        "1fc27c5e6890b68fea13d280fc0e667aacfbe7c99166c3ce302b131012a12e1a",
        "109b4ec343997dc34e6b9f85b66f3f0f486d796cc109abadaa3ba645200778e2",
        "8ce44ccbabbed73aef99668f5fb4a26004df454d3ca3633e092aa8fadcee4e82",
    ),
    2: (
        "66644da07878d32d474384fab9cdb34afd7bcd37986ebd1353ce1fd8e638b973",
        "813b59c6741bedc96e8ca0c64beb3457fda2077c97f44d74dc1a93f9501e7679",
        "27fb63d00fde490abe9152cf2e2d4f36ea890b62b9f45e249416a5d2b0ce36eb",
    ),
    3: (
        "56581ce65730c6e5c0643ae96574a47b653c76aaacdbbc72a14816a98cd45d58",
        "7bb5c112bc3e39a189968fdde51a6365e85f0108ec03485de21e272a9084fbbb",
        "e7678d95ab8cba483d7cb9d7d56363cc237ccbeea0e5ee2aa7e622c585672020",
    ),
    4: (
        "f74d77fb5e495c122f1ecdec68bbf932b81cbc3e2e9555f977372b8abcbf2bb0",
        "4de1ed95764e23d52e539c53c2e45f1d99820ae49be3a49a6f822fa0cd220d69",
        "fa3b4eed3a909878f3356dc5722f2ae970f8596b5705543d57b5aa73fcc431f1",
    ),
    5: (
        "2f78aa4a106375ad995a0a7cd0cbbd3c948e2f2bc30b7f8dbea04149fb022cb7",
        "9282893b3f49480603e93424c7ba54918202888ce42c6871e9ec3fa5b8b7e20b",
        "18eaa14c445c22bf0023166392148118723c178a143f50ca706c7379c50a3078",
    ),
}


def _build_registry() -> dict[str, SplitFile]:
    files = [
        _sdclr("cifar10/trainIdxList.npy", "86637b0277a0e19b84866cc236093aaf38c1694d97a72b8c0bbb272eb3ab5926"),
        _sdclr("cifar10/valIdxList.npy", "c386a19bc0e1c7c2e70c8b4e2b54edcfeef5e310b7aade402d163e6bae076825"),
        _sdclr("cifar100/cifar100_trainIdxList.npy", "482bb2cd15900c6500c77c17212fd1fc73725b821d6dab631941e4960956afda"),
        _sdclr("cifar100/cifar100_valIdxList.npy", "d0654dcc18b91345da49ba895a499641ff9d11757245ae79759dc45e9b83ec6d"),
        _sdclr("imagenet-100/imageNet_100_LT_train.txt", "0f94d6eef6935578a1e287a35d337cc0fe4c41059b023247d35a4119c93820bb"),
        _sdclr("imagenet-100/imageNet_100_BL_train.txt", "57e049bd8c79016dd8e599376a98c8f9f57e9bb82bb9f28758179a34ce2e9f28"),
        _sdclr("imagenet-100/ImageNet_100_val.txt", "e4c423bf2b93f5cf2a2de747bf83dba7763016bdac0203a619f324f890146004"),
        _sdclr("imagenet-100/ImageNet_100_test.txt", "2441627da7561b6d8e45dbcb34db8711ee678808cd88ec9d6d9b8d839a886363"),
        _sdclr(
            "imagenet-100/imageNet_100_sub_balance_train_0.01.txt",
            "3b09fdbdf937ea7b62201b5619be2c54773907191c6c34425751ebdd57a301a9",
        ),
        _sdclr(
            "ImageNet_LT/imageNet_sub_balance_train_0.01.txt", "bbda6ce75d35db9290b56f3c78149a059e454bdd5d2859c3945f6c7e847edca1"
        ),
        SplitFile(
            "ImageNet_LT/ImageNet_LT_test.txt",
            "d1590191cf8a71fada7b1aaedaa2d139a2aea93ff2f1b755319d0bd8dbaa55d5",
            f"{CB_RAW}/ImageNet_LT_test.txt",
            CB_HOME,
        ),
        SplitFile(
            "ImageNet_LT/ImageNet_LT_val.txt",
            "9af7ba688acf9532ff5845a8fb14a1e97fdc4c51ac48bc72c08ea9c3f7ff142e",
            f"{CB_RAW}/ImageNet_LT_val.txt",
            CB_HOME,
        ),
        # No checksum known to the suite: it checks the published size instead (115,846 lines, 1000 classes).
        SplitFile(
            "ImageNet_LT/ImageNet_LT_train.txt", None, f"{CB_RAW}/ImageNet_LT_train.txt", CB_HOME, lines=115_846, classes=1000
        ),
    ]
    for split, (d_b, d_i, s_b) in _CIFAR10_SUBSETS.items():
        for kind, sha in (("D_b", d_b), ("D_i", d_i), ("S_b", s_b)):
            files.append(_sdclr(f"cifar10_imbSub_with_subsets/split{split}_{kind}.npy", sha))
    for split, (d_b, d_i, s_b) in _CIFAR100_SUBSETS.items():
        for kind, sha in (("D_b", d_b), ("D_i", d_i), ("S_b", s_b)):
            files.append(_sdclr(f"cifar100_imbSub_with_subsets/cifar100_split{split}_{kind}.npy", sha))
    return {f.path: f for f in files}


#: Every split file the suite knows, by its path under ``split/``.
SPLIT_FILES: dict[str, SplitFile] = _build_registry()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _count_lines_and_classes(path: Path) -> tuple[int, int]:
    labels = set()
    lines = 0
    with open(path) as handle:
        for line in handle:
            parts = line.split()
            if parts:
                lines += 1
                labels.add(parts[-1])
    return lines, len(labels)


def verify(path: Path, entry: SplitFile) -> None:
    """Refuse a file that is not the upstream one, with one line that says what to do."""
    if entry.sha256 is not None:
        actual = sha256_of(path)
        if actual != entry.sha256:
            raise UserError(
                f"split file {path} has SHA-256 {actual[:16]}..., expected {entry.sha256[:16]}...: it is not "
                f"the published {entry.path}; replace it with the file from {entry.home}."
            )
        return
    lines, classes = _count_lines_and_classes(path)
    if (entry.lines is not None and lines != entry.lines) or (entry.classes is not None and classes != entry.classes):
        raise UserError(
            f"split file {path} has {lines} lines and {classes} classes, expected {entry.lines} and {entry.classes} "
            f"(the suite knows no checksum for it, so it checks the size): replace it with {entry.url}."
        )


def fetch_url(url: str, destination: Path, timeout: float = 30.0) -> None:
    """Download ``url`` to ``destination`` atomically (a temporary file, then rename)."""
    if os.environ.get(NO_DOWNLOAD_ENV):
        raise OSError(f"downloads disabled by {NO_DOWNLOAD_ENV}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=".tmp-")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(response, out)
        os.replace(tmp, destination)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def find_split_file(data_root: Path, path: str) -> Optional[Path]:
    """Where ``path`` is under the data root (``split/``, ``splits/`` or the root itself), or None."""
    for candidate in [data_root / d / path for d in SPLIT_DIRS] + [data_root / path]:
        if candidate.is_file():
            return candidate
    return None


def _one_line(exc: BaseException, limit: int = 120) -> str:
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


def ensure_split_files(data_root: Optional[Path], paths: Iterable[str], what: str) -> dict[str, Path]:
    """Locate, fetch where needed and verify the split files ``paths`` (keys of :data:`SPLIT_FILES`).

    Returns ``{path: local file}``. Missing files are downloaded into ``<data-root>/split/`` where the
    network allows; when that fails, one :class:`UserError` line says which files to put where.
    A file with a wrong checksum is refused (one line), never silently replaced.
    """
    paths = list(dict.fromkeys(paths))
    if data_root is None:
        folders = sorted({str(Path(p).parent) for p in paths})
        raise UserError(
            f"{what} needs the published split files: pass --data-root DIR and put {', '.join(folders)}/ from "
            f"{SPLIT_FILES[paths[0]].home} under DIR/split/ (the suite downloads them there where the network allows)."
        )
    found: dict[str, Path] = {}
    missing: list[str] = []
    failure = ""
    for path in paths:
        entry = SPLIT_FILES[path]
        local = find_split_file(data_root, path)
        if local is None:
            local = data_root / SPLIT_DIRS[0] / path
            try:
                fetch_url(entry.url, local)
            except Exception as exc:  # offline machines fail here; the message below says what to do
                failure = failure or _one_line(exc)
                missing.append(path)
                continue
        verify(local, entry)
        found[path] = local
    if missing:
        by_folder: dict[str, list[str]] = {}
        for path in missing:
            by_folder.setdefault(str(Path(path).parent), []).append(Path(path).name)
        places = "; ".join(
            f"{', '.join(names)} into {data_root / SPLIT_DIRS[0] / folder}/ (from {SPLIT_FILES[f'{folder}/{names[0]}'].home})"
            for folder, names in by_folder.items()
        )
        raise UserError(f"{what}: {len(missing)} split file(s) missing and the download failed ({failure}); put {places}.")
    return found
