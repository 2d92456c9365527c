"""Seed corpus: the fixture logs in small chunks, hostile lines that broke (or could break)
the parser, the state or the C hot path, and every reproducer in fuzz/crashes/ (so each run
replays the findings). Written to fuzz/build/seeds/ (not committed; rebuilt in a second).
Each seed starts with the mode byte of fuzz/checks.py; the reproducers already have one."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "logs"
SEEDS = ROOT / "fuzz" / "build" / "seeds"
CRASHES = ROOT / "fuzz" / "crashes"

US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"
PIECE = "VKEVYEKTPFUNEGQWKX56S4QILEOXOQFE7IZMGZS2TVPPIQRPN5UQ"
TS = "2026-08-20T10:15:03Z"


def down(size: str = "2048", sat: str = US1, action: str = '"GET"', msg="downloaded") -> str:
    return (f'{TS}\tINFO\tpiecestore\t{msg}\t{{"Process": "storagenode", "Piece ID": "{PIECE}", '
            f'"Satellite ID": "{sat}", "Action": {action}, "Offset": 0, "Size": {size}, '
            f'"Remote Address": "203.0.113.9:4000"}}')


def up(size: str = "2293760", sat: str = US1, msg: str = "uploaded") -> str:
    return (f'{TS}\tINFO\tpiecestore\t{msg}\t{{"process": "storagenode", "piece_id": "{PIECE}", '
            f'"satellite_id": "{sat}", "action": "PUT", "remote_address": "172.17.0.1:53694", '
            f'"size": {size}}}')


def hostile() -> list[bytes]:
    """Lines an attacker or a broken writer can put in a log."""
    started = up(msg="upload started").replace('"size": 2293760', '"available_space": 5')
    text = [
        down("1e400"), down("9" * 400), down("-5"), down("9" * 18), down("9" * 19),
        down("1.5"), up("1e400"), up("9" * 400), down(action="{}"), down(action='"DELETE"'),
        up(sat="\x00" * 8), down(sat="12EayRS2V1kEsWESU9QMRse\x00FhdxYxKicsiFmxrsLZHeLUtdps3S"),
        up(sat=""), up(sat="x" * 5000), down(msg="download canceled"),
        down(msg="download failed").replace("}", ', "error": "' + "\\u0000" * 20 + '"}'),
        "\n".join(down("9" * 18) for _ in range(12)),  # sums past 2**63 within one batch
        "\n".join([started, up()]), "\n".join([started.replace(TS, "2026-08-20T10:15:0"), up()]),
        "\r\n".join([down(), up(), down()]) + "\r\n",
        down()[: len(down()) // 2], up()[:-1], up()[:-2] + "}",
        down().replace(" ", ""), down() + "}", down().replace('"Offset": 0', '"Offset": -'),
        '{"L":"INFO","T":"' + TS + '","N":"piecestore","M":"downloaded","piece_id":"P",'
        '"satellite_id":"' + US1 + '","action":"GET","size":' + "9" * 400 + "}",
        '{"L":"INFO","N":"piecestore","M":"uploaded","piece_id":"P","satellite_id":[],'
        '"action":"PUT","size":1e400}',
        '{"L":"INFO","M":"\\ud800","N":"piecestore"}', '{"L":"INFO","M":"\\', "\t" * 40, "",
        "\n" * 50,
        down(sat="x" * (1 << 20)),  # a megabyte line (the harnesses run seeds in full)
    ]
    raw = [x.encode("utf-8", "surrogatepass") for x in text]
    raw += [
        down().encode().replace(b"203.0.113.9", b"\xff\xfe\x80"),
        up().encode().replace(US1.encode(), b"12Eay\xc3(\xed\xa0\x80\xc0\xaf"),
        b"\x00" * 64 + b"\n" + down().encode(), b"\xef\xbb\xbf" + up().encode(),
        down().encode().replace(b"INFO", b"INF\x00"),
    ]
    return raw + [x.encode("utf-8", "surrogatepass") for x in events() + house()]


def house() -> list[str]:
    """The housekeeping lines exporter/hotpath/house.c applies, behind a download of their
    satellite (so that NodeState._house knows it and C may apply them), and near misses."""
    retain = (f'{TS}\tINFO\tretain\tMoved pieces to trash during retain\t{{"process": '
              f'"storagenode", "Deleted pieces": 21494, "Failed to delete": 1, "Pieces failed '
              f'to read": 2, "Pieces count": 1666198, "Satellite ID": "{US1}", "Duration": '
              f'"36m18.247884426s", "Retain Status": "enabled"}}')
    trash = (f'{TS}\tINFO\tpieces:trash\temptying trash finished\t{{"process": "storagenode", '
             f'"satellite_id": "{US1}", "elapsed": "245.1ms"}}')
    used = (f'{TS}\tINFO\tlazyfilewalker.used-space-filewalker.subprocess\tused-space-filewalker '
            f'completed\t{{"process": "storagenode", "satelliteID": "{US1}", "process": '
            f'"storagenode", "piecesTotal": 1237233138276, "piecesContentSize": 12310469}}')
    lines = [retain, trash, used, retain.replace("Deleted pieces", "num deleted"),
             retain.replace("21494", "2.5"), retain.replace("36m18", "99999999h36m18"),
             trash.replace("245.1ms", "2h3m4.5s"), trash.replace('"elapsed"', '"Elapsed"'),
             used.replace("lazyfilewalker.", "").replace("}", ', "Lazy File Walker": false}')]
    return ["\n".join([down(), *lines, *lines]), *lines]


def events() -> list[str]:
    """Plain event lines (exporter/hotpath/events.c counts them in C) and their near misses:
    database texts at each level, housekeeping and transfer messages, NUL, CR, non-ASCII."""
    sat = f'{{"Process": "storagenode", "Satellite ID": "{US1}"}}'
    locked = '{"Process": "storagenode", "error": "ordersdb error: database is locked"}'
    lines = [f"{TS}\tINFO\torders\tfinished\t{sat}", f"{TS}\tWARN\torders\tx\t{locked}",
             f"{TS}\tERROR\tdb\tx\t{locked}", f"{TS}\tINFO\tdb\tx\t{locked}",
             f"{TS}\tINFO\tNode\tNode v1.99.3 started\t{{}}",
             f"{TS}\tINFO\tpieces:trash\temptying trash finished\t{sat}",
             f"{TS}\tINFO\tpiecestore\tupload rejected, too many requests\t{sat}",
             f"{TS}\tINFO\tx\tuploaded\t{sat}", f"{TS}\tFATAL\tx\tfinished\t{sat}"]
    return ["\n".join(lines), *lines, lines[0] + "\r", lines[0].replace("orders", "ord\x00"),
            lines[1].replace("locked", "lockéd"), lines[0].replace("finished", "fin\tished")]


def fixture_chunks(max_lines: int = 4) -> list[bytes]:
    out = []
    for path in sorted(FIXTURES.glob("*.log")):
        lines = path.read_bytes().split(b"\n")
        for size in range(1, max_lines + 1):
            out += [b"\n".join(lines[i : i + size]) for i in range(0, len(lines), size)]
    return out


def build(folder: Path = SEEDS) -> Path:
    """(Re)write the seed folder; returns it."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    seeds = fixture_chunks() + hostile()
    for i, seed in enumerate(dict.fromkeys(seeds)):
        # vary the mode byte: batch size, read time, decoding, geo (fuzz/checks.py Mode)
        data = bytes([(i * 37) & 0x3F]) + seed
        (folder / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)
    for path in sorted(CRASHES.iterdir()):
        shutil.copyfile(path, folder / f"crash-{path.name}")
    return folder


if __name__ == "__main__":
    folder = build(Path(sys.argv[1]) if len(sys.argv) > 1 else SEEDS)
    print(f"{len(list(folder.iterdir()))} seeds in {folder}")
