"""Imported by the fork server of ``tf2hf batch``, before it forks any worker; by nothing else.

The local executor names it in its fork server's preload list
(:data:`tf2hf.batch.local_pool.WARM_IMPORTS`), which is why nothing imports it by name. The fork
server is a child of the batch process and the parent of every worker, so importing this module
there does two things for all workers at once:

- it ties the server's life to the batch process (:func:`die_with_parent`), so that a killed
  batch takes its workers with it;
- it imports the converter (:mod:`tf2hf.api`) once, shared copy-on-write, instead of once per
  worker. For a batch that verifies, the preload list goes on with torch and transformers'
  model machinery (:data:`tf2hf.batch.local_pool.VERIFY_IMPORTS`), seconds of CPU each time.

On Linux the kernel watches the parent and importing starts no thread, so forking afterwards is
safe; elsewhere a watching thread does, which forked workers do not inherit: each starts its own.
"""

from __future__ import annotations

from tf2hf.batch.local_pool import die_with_parent
from tf2hf.offline import work_offline

die_with_parent()

# The offline settings verification uses: the hub client reads them when it is imported, which
# the fork server may do right after this module, so they must be set first. Only Hugging Face
# libraries read them, and a batch that does not verify never imports those.
work_offline()

import tf2hf.api  # noqa: E402,F401
