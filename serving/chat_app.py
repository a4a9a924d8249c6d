"""lorabench chat page: `streamlit run serving/chat_app.py` (or `lorabench serve`).

Local backend by default (the embedded model and the adapters under $LORABENCH_HOME); set
LORABENCH_CHAT_ENDPOINT to chat through TGI, vLLM or llama.cpp's server instead. The variables
are listed in harness/serving/config.py.
"""

import sys
from pathlib import Path

try:
    import harness  # noqa: F401  (installed with the project)
except ImportError:  # run from a checkout without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.serving.ui import main

main()
