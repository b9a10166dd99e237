"""The AWS CLI as tests run it: its path in the venv and an environment that reads no user config."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

AWS = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")


def aws_cli_env(server: Any, home: Path, **extra: str) -> dict[str, str]:
    """Credentials of `server`, a private HOME and no config or credentials files from the user."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_DEFAULT_REGION": server.region,
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
        **extra,
    }
