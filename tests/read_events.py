"""Reads a run directory's TensorBoard event files with TensorBoard's own reader (EventAccumulator) and
prints JSON: {"files": n, "scalars": {tag: [[step, value], ...]}, "histograms": {tag: [[step, num, min, max,
sum of the bucket counts], ...]}, "images": {tag: [[step, width, height, sha256 of the encoded image], ...]},
"hparams": {...}, "status": n}."""
import hashlib
import json
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2

acc = event_accumulator.EventAccumulator(
    sys.argv[1],
    size_guidance={event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0, event_accumulator.IMAGES: 0},
)
acc.Reload()
scalars = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
histograms = {
    tag: [[e.step, e.histogram_value.num, e.histogram_value.min, e.histogram_value.max,
           sum(e.histogram_value.bucket)] for e in acc.Histograms(tag)]
    for tag in acc.Tags()["histograms"]
}
images = {
    tag: [[e.step, e.width, e.height, hashlib.sha256(e.encoded_image_string).hexdigest()] for e in acc.Images(tag)]
    for tag in acc.Tags()["images"]
}
hparams, status = {}, None
for tag, content in acc.PluginTagToContent("hparams").items():
    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    if data.HasField("session_start_info"):
        for name, value in data.session_start_info.hparams.items():
            hparams[name] = getattr(value, value.WhichOneof("kind"))
    if data.HasField("session_end_info"):
        status = data.session_end_info.status
print(json.dumps({"scalars": scalars, "histograms": histograms, "images": images, "hparams": hparams,
                  "status": status}))
