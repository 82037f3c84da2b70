"""The jsii floor: a one-stack CDK app with a single bucket.

``python bench/trivial_app.py`` synthesizes it with CDK's defaults (as any new CDK app);
``--app-settings`` the way app.py does (``app_builder.new_app``: cdk.json's context, built-in
template validator off), which bench/synth_bench.py also runs with cdk.json's interpreter flags (``-O``).
"""

import sys
from pathlib import Path

from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

if "--app-settings" in sys.argv[1:]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the app lives at the root
    from mlops_loop.app_builder import new_app

    app = new_app()
else:
    app = App()
s3.Bucket(Stack(app, "Trivial"), "Bucket")
app.synth()
