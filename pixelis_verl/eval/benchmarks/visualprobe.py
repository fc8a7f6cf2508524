"""`visualprobe`: VisualProbe (Mini-o3; HF ``Mini-o3/VisualProbe_{Easy,Medium,Hard}``), short free-form answers
about small targets in cluttered high-resolution images, 500 test questions over three difficulty levels.

Each level's ``val.json`` is a JSON list of ``{"problem", "images": [...], "solution", ...}``; ``problem``
may carry ``<image>`` placeholders (dropped here) and ``images`` are paths relative to the folder holding
the three level folders (Mini-o3's ``BASE_IMAGE_DIR``), e.g. ``VisualProbe_Hard/data/...jpg``; a path
relative to the level's own folder is accepted too. The category is the level.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from pixelis_verl.eval.items import (
    BenchmarkAdapter,
    BenchmarkFormatError,
    BenchmarkItem,
    make_item,
    read_json,
    register_benchmark,
    require_keys,
    require_unique_ids,
    write_json,
    write_media,
)

LEVELS = {
    "easy": "VisualProbe_Easy/val.json",
    "medium": "VisualProbe_Medium/val.json",
    "hard": "VisualProbe_Hard/val.json",
}


def _image(name: str, root: Path, level_dir: Path, path: Path, where: str) -> Path:
    for candidate in (root / name, level_dir / name):
        if candidate.is_file():
            return candidate
    raise BenchmarkFormatError(path, f"{where}: image '{name}' is neither under '{root}' nor under '{level_dir}'")


@register_benchmark("visualprobe")
class VisualProbeBenchmark(BenchmarkAdapter):
    @dataclass
    class Params:
        levels: dict[str, str] = field(default_factory=lambda: dict(LEVELS))  # level -> its question file

    def load(self, root: Path) -> list[BenchmarkItem]:
        items = []
        for level, name in self.params.levels.items():
            path = root / name
            records = read_json(path, "a JSON list of {problem, images, solution}")
            if not isinstance(records, list):
                raise BenchmarkFormatError(path, f"expected a JSON list of questions; got {type(records).__name__}")
            for number, record in enumerate(records):
                where = f"question {number}"
                require_keys(record, ("problem", "images", "solution"), path, where)
                if not isinstance(record["images"], list):
                    raise BenchmarkFormatError(path, f"{where}: images must be a list of paths")
                items.append(
                    make_item(
                        path, where,
                        id=f"{level}/{record.get('doc_id', number)}",
                        question=str(record["problem"]).replace("<image>", "").strip(),
                        answer=str(record["solution"]).strip(), metric="exact",
                        images=[_image(str(p), root, path.parent, path, where) for p in record["images"]],
                        category=level,
                    )
                )  # fmt: skip
        return require_unique_ids(items, root)

    def export(self, items: list[BenchmarkItem], root: Path) -> list[BenchmarkItem]:
        """Open questions on images; each in the level its category names (another category: the first level),
        its id read back as ``<level>/<doc_id>``."""
        held, records = [], {level: [] for level in self.params.levels}
        for number, item in enumerate(i for i in items if i.metric == "exact" and i.video is None and i.images):
            level = item.category if item.category in records else next(iter(records))
            question = item.question.replace("<image>", "").strip()
            doc_id = item.id.removeprefix(f"{level}/")
            folder = Path(self.params.levels[level]).parent / "data"
            images = [write_media(m, root / folder / f"{number:05d}-{i}") for i, m in enumerate(item.images)]
            names = [p.relative_to(root).as_posix() for p in images]
            record = {"problem": f"<image>\n{question}", "images": names, "solution": item.answer.strip()}
            records[level].append({**record, "doc_id": doc_id})
            held.append(replace(item, id=f"{level}/{doc_id}", question=question, answer=item.answer.strip(),
                                category=level, categories=[level], images=images))  # fmt: skip
        for level, name in self.params.levels.items():
            write_json(root / name, records[level])
        order = list(self.params.levels)  # load reads level by level
        return sorted(held, key=lambda i: order.index(i.category))
