"""A synthetic request stream for demos, tests and benchmarks: the pixel tasks as unlabeled requests.

Each task becomes a request record (`data/synth/requests.py`, media under the data root's `stream/`); every
`bad_every`-th line is a malformed record (cycling through the kinds the stream must
dead-letter: a lone surrogate, bad JSON, a duplicate id, a missing field, paths outside the root or missing),
so a run shows both paths. The answers go to a separate key file the driver never reads,
for scoring a run afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path

from pixelis_verl.data.synth.requests import synth_requests

BAD_RECORDS = (  # the first four are what a 32-request stream with bad_every=8 carries (the TTRL e2e test)
    # Valid at parse in the past, fatal after the rollout (tokenizer, answer log, print): refused at parse now.
    json.dumps({"id": "bad-surrogate", "question": "What is \ud800?", "images": ["stream/req-00000.png"]}),
    "{this is not json",
    json.dumps({"id": "req-00000", "question": "Again?", "images": ["stream/req-00000.png"]}),  # a duplicate id
    json.dumps({"id": "bad-no-question", "images": ["stream/none.png"]}),
    json.dumps({"id": "bad-outside-root", "question": "What is this?", "images": ["../../etc/passwd"]}),
    json.dumps({"id": "bad-missing-file", "question": "What is this?", "images": ["stream/missing.png"]}),
)


def write_stream(
    path: str | Path,
    data_root: str | Path,
    num: int,
    seed: int,
    kinds: list[str],
    bad_every: int = 0,
    select_tools: bool = False,
) -> Path:
    """Write `num` requests (plus bad records) to `path`, media under `data_root/stream`; returns the key file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines, key = [], []
    for i, request in enumerate(synth_requests(data_root, num, seed, kinds, select_tools=select_tools)):
        lines.append(json.dumps(request.record))
        key.append(json.dumps({"id": request.record["id"], "answer": request.answer,
                               "answer_metric": request.answer_metric, "kind": request.kind}))  # fmt: skip
        if bad_every and (i + 1) % bad_every == 0:
            lines.append(BAD_RECORDS[(i // bad_every) % len(BAD_RECORDS)])
    path.write_text("\n".join(lines) + "\n")
    key_path = path.with_name(path.stem + ".key.jsonl")
    key_path.write_text("\n".join(key) + "\n")
    return key_path
