r"""`prepare --runner beam`: the UCF-101 prepare work as an Apache Beam pipeline.

    python -m lrcn_tf.prepare --dataset ucf101 --src UCF-101 --splits ucfTrainTestlist \
        --out DIR --runner beam --beam_options="--runner=FlinkRunner --flink_master=HOST:8081"

The launcher reads the split lists and makes the shard plan exactly as `--runner local`
does (prepare.py); the pipeline then does the work of the local worker pool:

    shard tasks -> one element per video -> Reshuffle (spreads the videos over the workers)
      -> decode + flow + JPEG-encode one video (`shards.video_records`)
      -> GroupByKey(shard) -> write the shard's files, index and rows in plan order
         (`shards.write_records`)

and the launcher finishes as the local path does (manifest.csv, classes.txt, dataset.json
from the shards' rows). The per-video and per-shard functions are the local path's, so the
sharding, the records, the indexes, the failure records and the manifest are the same
(tests/test_prepare_beam.py compares the two byte for byte on synthetic_ucf101).

Default options: Beam's local runner (DirectRunner) with `--workers` processes. Any other
runner (Flink, Spark, Dataflow) takes its options in `--beam_options`; its workers must see
--src and --out under the same paths as the launcher (a shared file system: NFS, a mounted
bucket), and have lrcn-tf installed (`pip install lrcn-tf[beam]`; Dataflow:
`--requirements_file` or a container image).
"""

from __future__ import annotations

import shlex

from lrcn_tf.data.ucf101.shards import PrepareError, ShardTask, video_records, write_records


def default_options(workers: int) -> list[str]:
    """Beam's local runner with `workers` processes."""
    return [
        "--runner=DirectRunner",
        f"--direct_num_workers={workers}",
        "--direct_running_mode=multi_processing"
        if workers > 1
        else "--direct_running_mode=in_memory",
    ]


def parse_options(text: str | None, workers: int) -> list[str]:
    """--beam_options (one string, shell-quoted) -> a list; empty: `default_options`."""
    args = shlex.split(text or "")
    return args or default_options(workers)


def _videos(task: ShardTask):
    for i, video in enumerate(task.videos):
        yield task.name, (i, task, video)


def _work(element):
    name, (i, task, video) = element
    row, records = video_records(task, video)
    return name, (i, task, row, records)


def _write(element) -> int:
    _, items = element
    items = sorted(items, key=lambda x: x[0])
    task = items[0][1]
    rows = write_records(task, ((row, records) for _, _, row, records in items))
    return len(rows)


def pipeline(options: list[str]):
    """An empty Beam pipeline with these options (PrepareError if Beam is missing or an
    option is wrong)."""
    try:
        import apache_beam as beam
        from apache_beam.options.pipeline_options import PipelineOptions
    except ImportError:
        raise PrepareError("--runner beam needs Apache Beam: pip install 'lrcn-tf[beam]'") from None
    try:
        return beam.Pipeline(options=PipelineOptions(options))
    except (SystemExit, ValueError) as e:
        raise PrepareError(f"--beam_options {shlex.join(options)!r}: {e}") from None


def run(p, tasks: list[ShardTask]) -> None:
    """Runs pipeline `p` over `tasks`; returns when every shard is written."""
    import apache_beam as beam

    if not tasks:
        return
    with p:
        (
            p
            | "ShardTasks" >> beam.Create(tasks)
            | "Videos" >> beam.FlatMap(_videos)
            | "Spread" >> beam.Reshuffle()
            | "DecodeAndFlow" >> beam.Map(_work)
            | "ByShard" >> beam.GroupByKey()
            | "WriteShards" >> beam.Map(_write)
        )
