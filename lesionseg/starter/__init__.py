"""The starter model shipped inside the package: a small FLAIR-like 2.5D bundle to fine-tune, never downloaded.

``starter.lsb`` is an ordinary bundle (:mod:`lesionseg.bundle`), made by ``scripts/make_starter.py`` on
heavily varied synthetic cohorts (:func:`lesionseg.synth.variety.varied_case_options`); its manifest's
``provenance.made_by`` gives the script, the seed, the cohorts and the training settings, and
``starter.log`` beside it is the script's log. It is trained on synthetic data only: fine-tune it on your
scans (``lesionseg train ... --finetune starter``, which the ``cpu`` preset does by default when it fits).
"""

from __future__ import annotations

from pathlib import Path

from lesionseg.errors import BundleError

STARTER_FILE = "starter.lsb"
STARTER_LOG = "starter.log"


def starter_bundle_path() -> Path:
    """The shipped starter bundle.

    Raises:
        BundleError: this copy of the package does not hold it (e.g. a source tree where the script has not
            been run).
    """
    path = Path(__file__).with_name(STARTER_FILE)
    if not path.is_file():
        raise BundleError(f"the starter model {path} is not part of this installation; make it with "
                          "'python scripts/make_starter.py' or train --from-scratch.")
    return path
