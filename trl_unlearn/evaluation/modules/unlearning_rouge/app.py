"""The Space of this metric: evaluate's Gradio widget around the script next to this file."""

from pathlib import Path

import evaluate
from evaluate.utils import launch_gradio_widget

module = evaluate.load(str(Path(__file__).with_name("unlearning_rouge.py")))
launch_gradio_widget(module)
