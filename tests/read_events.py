"""Reads a run directory's TensorBoard event files with TensorBoard's own reader (EventAccumulator) and
prints JSON: {"files": n, "scalars": {tag: [[step, value], ...]}, "histograms": {tag: [[step, num, min, max,
sum of the bucket counts], ...]}, "hparams": {...}, "status": n}."""
import json
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2

acc = event_accumulator.EventAccumulator(
    sys.argv[1], size_guidance={event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0}
)
acc.Reload()
scalars = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
histograms = {
    tag: [[e.step, e.histogram_value.num, e.histogram_value.min, e.histogram_value.max,
           sum(e.histogram_value.bucket)] for e in acc.Histograms(tag)]
    for tag in acc.Tags()["histograms"]
}
hparams, status = {}, None
for tag, content in acc.PluginTagToContent("hparams").items():
    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    if data.HasField("session_start_info"):
        for name, value in data.session_start_info.hparams.items():
            hparams[name] = getattr(value, value.WhichOneof("kind"))
    if data.HasField("session_end_info"):
        status = data.session_end_info.status
print(json.dumps({"scalars": scalars, "histograms": histograms, "hparams": hparams, "status": status}))
