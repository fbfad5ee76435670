"""Imported first by the fork server of ``tf2hf batch`` (see ``LocalExecutor``).

The fork server is a child of the batch process, and the parent of every worker. Importing this
module makes it end with the batch process, so that a killed batch takes its workers with it.
It also loads the converter once for all workers.
"""

from __future__ import annotations

from tf2hf.batch.core import die_with_parent

die_with_parent()

import tf2hf.api  # noqa: E402,F401
