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
(tests/test_prepare_beam.py compares the two on the UCF-101 test release, with its failed
videos, and on synthetic_ucf101: byte for byte, the index files array by array).

Default options: Beam's local runner (DirectRunner) with `--workers` processes. Any other
runner (Flink, Spark, Dataflow) takes its options in `--beam_options` (an option Beam does
not know is refused, not only warned about); its workers must see --src and --out under the
same paths as the launcher (a shared file system: NFS) and have lrcn-tf installed. Commands
for each runner: docs/scaling.md, section 4.
"""

from __future__ import annotations

import contextlib
import io
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
    usage = io.StringIO()  # argparse prints its usage and error there, then exits
    try:
        with contextlib.redirect_stderr(usage):
            parsed = PipelineOptions(options)
            # Beam itself only warns about an option it does not know (a misspelt
            # --flink_master would run somewhere else): refuse it.
            known = parsed.get_all_options()
            unknown = set(parsed.get_all_options(retain_unknown_options=True)) - set(known)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join('--' + u for u in sorted(unknown))}")
        return beam.Pipeline(options=parsed)
    except (SystemExit, ValueError) as e:
        lines = usage.getvalue().strip().splitlines()
        why = lines[-1].split("error: ", 1)[-1] if isinstance(e, SystemExit) and lines else e
        raise PrepareError(f"--beam_options {shlex.join(options)!r}: {why}") from None


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
