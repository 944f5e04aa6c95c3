"""train.py on several replicas with tf.distribute: the GPUs of one machine (MirroredStrategy,
or its CPU when it has none) or several processes and machines (MultiWorkerMirroredStrategy,
described by TF_CONFIG or by --cluster and --task-index, which write it).

What the strategy changes in a run, and what it does not:

- ``--batch-size`` stays the GLOBAL batch (images per step, summed over all replicas); each
  replica computes the gradient of ``batch / replicas`` images and the all-reduced mean is
  one step of the single-machine recipe: same steps per epoch, same learning rate.
- The tf.data pipeline is sharded per worker by data (``AutoShardPolicy.DATA``): every worker
  builds the same (seeded) stream of global batches and keeps its share of each one.
- BatchNorm normalises over each replica's share of the batch (Keras's default,
  ``synchronized=False``); the moving statistics, which each replica updates on its own, are
  averaged over the replicas at the end of every epoch (``AverageMovingStatistics``), so
  that every worker holds the same weights before the checkpoint is written.
- Only the chief (task 0) writes into ``--out``; the other workers write their checkpoints
  into a temporary folder that they delete (saving can involve collective reads, so all
  workers save, as in TensorFlow's multi-worker tutorial).

Errors the user can fix (a wrong TF_CONFIG, a port in use, an unreachable peer, a lost worker)
raise TrainError: one line in the CLI.
"""
import contextlib
import errno
import hashlib
import json
import os
import re
import socket
import time
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from resnet_course.learner.training import batchnorm_layers
from resnet_course.training.recipes import WORKER_TIMEOUT
from resnet_course.training.train_config import TrainError

# How long a worker waits for its peers: at start-up (all of them listening) and then for any
# collective operation; a peer silent for longer is taken for lost and the run stops.
DEFAULT_WORKER_TIMEOUT = WORKER_TIMEOUT
BARRIER_TIMEOUT = 7 * 24 * 3600
# The errors a collective operation raises when a peer is gone or silent.
PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
               tf.errors.CancelledError, tf.errors.AbortedError, tf.errors.InternalError,
               tf.errors.UnknownError)


@dataclass
class Distribution:
    """Where a run's replicas are; ``strategy`` is None for --distribute none."""
    kind: str = "none"
    strategy: object = None
    num_workers: int = 1
    task_index: int = 0
    replicas: int = 1
    devices: list = field(default_factory=list)
    addresses: list = field(default_factory=list)
    timeout: float = DEFAULT_WORKER_TIMEOUT

    @property
    def is_chief(self):
        return self.task_index == 0

    @property
    def multi_worker(self):
        return self.kind == "multi-worker"

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self):
        if self.strategy is None:
            return "one replica (no tf.distribute strategy)"
        where = ", ".join(self.devices) or "CPU"
        if self.multi_worker:
            return (f"MultiWorkerMirroredStrategy: worker {self.task_index} of "
                    f"{self.num_workers} ({', '.join(self.addresses)}), {self.replicas} "
                    f"replicas in all; this worker: {where}")
        return f"MirroredStrategy: {self.replicas} replica(s) on {where}"

    def barrier(self):
        """Multi-worker: return when every worker has called it (no time limit: a worker
        that dies is noticed by TensorFlow's heartbeats). Workers other than the chief wait
        here while it writes the results, so that none is taken for crashed."""
        if not self.multi_worker:
            return
        one = tf.constant(1.0)
        # None would mean the strategy's own timeout (--worker-timeout), which writing the
        # results may exceed: a week instead
        self.strategy.extended.reduce_to(
            tf.distribute.ReduceOp.SUM, one, destinations=one,
            options=tf.distribute.experimental.CommunicationOptions(timeout_seconds=BARRIER_TIMEOUT))

    def to_dict(self):
        return {"kind": self.kind, "workers": self.num_workers, "replicas": self.replicas,
                "task_index": self.task_index, "devices": self.devices,
                "cluster": self.addresses}


# ---- TF_CONFIG ----------------------------------------------------------------------------

def parse_address(text, what):
    """(host, port) of "host:port"; TrainError naming ``what`` otherwise."""
    host, sep, port = str(text).strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TrainError(f"{what}: {text!r} is not host:port (e.g. 10.0.0.2:12345).")
    return host.strip("[]"), int(port)


def tf_config_from_options(cluster, task_index):
    """The TF_CONFIG dict of --cluster "host:port,host:port,..." and --task-index N."""
    addresses = [a.strip() for a in str(cluster).split(",") if a.strip()]
    if len(addresses) < 1:
        raise TrainError("--cluster needs host:port of every worker, comma-separated.")
    for address in addresses:
        parse_address(address, "--cluster")
    if len(set(addresses)) != len(addresses):
        raise TrainError(f"--cluster names an address twice: {cluster}.")
    if task_index is None:
        raise TrainError("--cluster needs --task-index: which of its workers this one is "
                         "(0, the chief, writes the results).")
    if not 0 <= task_index < len(addresses):
        raise TrainError(f"--task-index {task_index} is not a worker of --cluster, which has "
                         f"{len(addresses)} (0 to {len(addresses) - 1}).")
    return {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": task_index}}


def read_tf_config(text):
    """(addresses of all tasks in order, index of this task in it) from TF_CONFIG's text;
    TrainError with one line for anything else. Jobs: "worker", and "chief" (which comes
    first and writes the results)."""
    if not text:
        raise TrainError("--distribute multi-worker needs the cluster: set TF_CONFIG or give "
                         "--cluster host:port,host:port --task-index N.")
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        task_type, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as err:
        raise TrainError(f"TF_CONFIG is not a cluster description ({type(err).__name__}: "
                         f"{err}); expected {{\"cluster\": {{\"worker\": [\"host:port\", ...]}}, "
                         f"\"task\": {{\"type\": \"worker\", \"index\": 0}}}}.") from None
    if not isinstance(cluster, dict) or not set(cluster) <= {"chief", "worker"} or not cluster:
        raise TrainError(f"TF_CONFIG's cluster has jobs {sorted(cluster) if isinstance(cluster, dict) else cluster}; "
                         f"train.py runs \"worker\" jobs (and an optional \"chief\").")
    jobs = [job for job in ("chief", "worker") if job in cluster]
    for job in jobs:
        if not isinstance(cluster[job], list) or not cluster[job]:
            raise TrainError(f"TF_CONFIG: cluster.{job} must be a list of host:port.")
        for address in cluster[job]:
            parse_address(address, f"TF_CONFIG cluster.{job}")
    if task_type not in cluster:
        raise TrainError(f"TF_CONFIG: task type {task_type!r} is not a job of the cluster "
                         f"({', '.join(jobs)}).")
    if not 0 <= index < len(cluster[task_type]):
        raise TrainError(f"TF_CONFIG: task {task_type} {index} does not exist; the cluster has "
                         f"{len(cluster[task_type])} {task_type} task(s) (index 0 to "
                         f"{len(cluster[task_type]) - 1}).")
    if "chief" in cluster and len(cluster["chief"]) != 1:
        raise TrainError("TF_CONFIG: the cluster must have exactly one chief.")
    addresses = [a for job in jobs for a in cluster[job]]
    offset = 0 if task_type == "chief" or "chief" not in cluster else 1
    return addresses, offset + index


def listen_on(address):
    """A plain TCP socket listening on ``address``'s port (the rendezvous before TensorFlow
    takes the port over); TrainError when the port is in use."""
    host, port = parse_address(address, "this worker's address")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", port))
        listener.listen(16)
    except OSError as err:
        listener.close()
        reason = "is in use" if err.errno == errno.EADDRINUSE else f"cannot be used ({err})"
        raise TrainError(f"port {port} of this worker ({address}) {reason}: stop what listens "
                         f"there or give this worker another port in the cluster.") from None
    return listener


def wait_for_peers(addresses, own, timeout, log=print):
    """Return once every address but ``own`` accepts a TCP connection; TrainError naming the
    first that did not within ``timeout`` seconds. (MultiWorkerMirroredStrategy's constructor
    itself waits for every worker without a time limit, so this comes first: each worker
    listens on its port with listen_on while it waits here.)"""
    deadline = time.monotonic() + timeout
    for index, address in enumerate(addresses):
        if index == own:
            continue
        host, port = parse_address(address, "TF_CONFIG")
        said = False
        while True:
            try:
                with socket.create_connection((host, port), timeout=2):
                    break
            except OSError as err:
                if time.monotonic() > deadline:
                    raise TrainError(
                        f"worker {index} at {address} did not answer within {timeout:g} s "
                        f"({err.strerror or err}): start train.py there with the same cluster "
                        f"and task index {index}, or check the address and the firewall "
                        f"(--worker-timeout to wait longer).") from None
                if not said:
                    log(f"worker {own}: waiting for worker {index} at {address} (up to "
                        f"{timeout:g} s)")
                    said = True
                time.sleep(0.5)


# ---- the strategies -----------------------------------------------------------------------

def make_distribution(kind, cluster=None, task_index=None, timeout=DEFAULT_WORKER_TIMEOUT,
                      log=print):
    """The Distribution of --distribute ``kind``; for multi-worker it must run before
    TensorFlow has executed anything in this process."""
    if kind in (None, "none"):
        if cluster is not None or task_index is not None:
            raise TrainError("--cluster and --task-index go with --distribute multi-worker.")
        return Distribution()
    if not timeout > 0:
        raise TrainError(f"--worker-timeout must be positive, got {timeout}.")
    gpus = [device.name for device in tf.config.list_physical_devices("GPU")]
    if kind == "mirrored":
        if cluster is not None or task_index is not None:
            raise TrainError("--cluster and --task-index go with --distribute multi-worker.")
        strategy = tf.distribute.MirroredStrategy()
        if not gpus:
            log("note: no GPU found: --distribute mirrored runs one replica on the CPU (the "
                "same training as --distribute none)")
        return Distribution("mirrored", strategy, replicas=strategy.num_replicas_in_sync,
                            devices=gpus or ["CPU"], timeout=timeout)
    if kind != "multi-worker":
        raise TrainError(f"--distribute must be none, mirrored or multi-worker, got {kind!r}.")

    if cluster is not None:
        os.environ["TF_CONFIG"] = json.dumps(tf_config_from_options(cluster, task_index))
    elif task_index is not None:
        raise TrainError("--task-index goes with --cluster (TF_CONFIG names the task itself).")
    addresses, own = read_tf_config(os.environ.get("TF_CONFIG"))
    listener = listen_on(addresses[own])
    try:
        wait_for_peers(addresses, own, timeout, log)
    finally:
        listener.close()  # TensorFlow's server listens there from now on
    log(f"worker {own}: all {len(addresses)} workers answer; starting TensorFlow's collectives")
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                timeout_seconds=timeout))
    except (RuntimeError, ValueError, tf.errors.OpError) as err:
        raise TrainError(f"could not start worker {own} at {addresses[own]}: "
                         f"{str(err).splitlines()[0]}") from None
    patch_keras_multi_worker()
    return Distribution("multi-worker", strategy, num_workers=len(addresses), task_index=own,
                        replicas=strategy.num_replicas_in_sync, devices=gpus or ["CPU"],
                        addresses=addresses, timeout=timeout)


def dataset_options():
    """tf.data options for a pipeline fed to a strategy: shard by data (the arrays are in
    memory; there are no files to share out)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


# ---- Keras 3 and MultiWorkerMirroredStrategy ------------------------------------------------
# Keras 3.15's model.fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585):
# (1) before the first step it all-reduces a whole data batch to learn the input shapes, which
# cannot convert its PerReplica value; (2) it reduces the per-step scalar metrics with
# strategy.reduce(..., axis=0), an error for a scalar. The two functions below avoid both:
# the model is built from the pipeline's element_spec (shapes only), and scalar metrics are
# averaged over the replicas with axis=None. Tested by tests/test_distributed.py.

def patch_keras_multi_worker():
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = getattr(tf_trainer.reduce_per_replica, "original", tf_trainer.reduce_per_replica)

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica.original = original
    tf_trainer.reduce_per_replica = reduce_per_replica


def build_for_fit(model, distribution, element_spec):
    """Create the model's, optimizer's and metrics' variables inside the strategy's scope from
    the pipeline's (images, labels) spec, before model.fit (see above)."""
    if not distribution.multi_worker:
        return
    with distribution.scope():
        model._symbolic_build(data_batch=(*element_spec, None))
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


class AverageMovingStatistics(keras.callbacks.Callback):
    """At the end of every epoch, the BatchNorm moving mean and variance of every replica
    replaced by their mean over the replicas (one all-reduce), so that every worker holds the
    same weights; placed before the callback that writes the checkpoint."""

    def __init__(self, strategy):
        super().__init__()
        self.strategy = strategy
        self._average = None

    def _build(self):
        variables = [v.value for layer in batchnorm_layers(self.model)
                     for v in (layer.moving_mean, layer.moving_variance)]
        strategy = self.strategy

        @tf.function
        def average():
            def local():
                return tf.concat([tf.reshape(tf.identity(v), [-1]) for v in variables], 0)
            mean = strategy.reduce(tf.distribute.ReduceOp.MEAN, strategy.run(local), axis=None)
            offset = 0
            for v in variables:
                size = v.shape.num_elements()
                v.assign(tf.reshape(mean[offset:offset + size], v.shape))
                offset += size

        return average if variables else (lambda: None)

    def on_epoch_end(self, epoch, logs=None):
        if self._average is None:
            self._average = self._build()
        self._average()


def weights_fingerprint(model):
    """The first 16 hex digits of the sha256 of every model weight and optimizer variable:
    equal on every worker of a run (they train one model)."""
    digest = hashlib.sha256()
    arrays = [*model.get_weights(),
              *(np.asarray(v.numpy()) for v in getattr(model.optimizer, "variables", []))]
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def lost_worker(text, distribution):
    """The index of the peer a collective's error ``text`` names (a task that stopped sending
    heartbeats, or the address it could not reach), or None."""
    for match in re.finditer(r"/job:\w+/replica:\d+/task:(\d+)(?!/device)", text):
        if int(match.group(1)) != distribution.task_index:
            return int(match.group(1))
    for index, address in enumerate(distribution.addresses):
        if index != distribution.task_index and re.search(rf":{parse_address(address, '')[1]}\b", text):
            return index
    return None


def lost_worker_message(err, distribution, out, epochs_done):
    """TrainError text for a collective that failed because a peer is gone or silent."""
    text = str(getattr(err, "message", err))
    index = lost_worker(text, distribution)
    who = (f"worker {index} ({distribution.addresses[index]}) stopped answering"
           if index is not None else
           f"another worker was lost or did not answer within {distribution.timeout:g} s")
    return (f"the run stopped: {who} ({type(err).__name__}); {epochs_done} epoch(s) are "
            f"checkpointed in the chief's {out}: start every worker again with --resume "
            f"(the same cluster).")


def free_ports(count, host="127.0.0.1"):
    """``count`` TCP ports of ``host`` that nobody listens on now (bound together, so all different),
    for a cluster of local workers (tests, benchmarks)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
