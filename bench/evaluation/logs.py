"""What the harness's log shows of the libraries it drives: lm-eval's own bars and chatter muted,
so every line left names a model and a task. Imports nothing heavy: ``quiet_lm_eval`` has to
run before lm-eval (and its tqdm) is first imported."""

from __future__ import annotations

import logging
import os


class _DropDatasetHint(logging.Filter):
    """lm-eval repeats a hint about --metadata for every task with a custom_dataset loader."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Custom kwargs can be passed" not in record.getMessage()


def quiet_lm_eval() -> None:
    """Mute lm-eval's unlabelled progress bars and INFO chatter; ours name model and task."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    logging.getLogger("lm_eval.api.task").addFilter(_DropDatasetHint())
