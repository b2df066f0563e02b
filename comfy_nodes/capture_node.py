"""The explicit capture node, for graphs run with the global hook off
(``RAIIAF_CAPTURE=0``)."""

from __future__ import annotations

from comfy_api.latest import io

from . import capture


class CaptureNoise(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="RaiiafCaptureNoise",
            display_name="Capture noise (.raiiaf)",
            category="sampling/raiiaf",
            description=(
                "Records the initial noise of samplers using this model for the .raiiaf save "
                "node. Only needed when the global capture is switched off (RAIIAF_CAPTURE=0)."
            ),
            inputs=[io.Model.Input("model")],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def execute(cls, model):
        return io.NodeOutput(capture.patch_model(model))
