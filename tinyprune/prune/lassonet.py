"""LassoNet feature selection (Lemhadri, Ruan, Abraham & Tibshirani, JMLR 2021).

The network is f(x) = theta^T x + g_W(x): a linear skip layer theta beside a network g whose first
layer W reads the features. The hierarchy ||W_j||_inf <= M * ||theta_j||_2 lets feature j reach the
network only while its linear weight is alive, so when the L1-like penalty lambda * ||theta_j|| drives
theta_j to zero the whole feature is gone. After every gradient step the hier-prox operator (the
paper's Algorithm 2) applies the penalty and the constraint exactly. Over a path of increasing lambda,
each warm-started from the last, features drop out one by one; the path gives the accuracy for each
number of features. The chosen point is compacted: the model's input shrinks to the kept features,
so the board reads fewer sensors."""
from __future__ import annotations

import numpy as np

from tinyprune.errors import TinypruneError
from tinyprune.prune.result import PruneResult, detached_copy, history_recorder, model_score, model_score_name
from tinyprune.train import Progress, compile_for_task, fit, seed_everything


def hier_prox(theta, weights, lam, m):
    """The hier-prox operator, for all features at once.

    theta: (d, k) skip weights (row j: feature j's weight to each of k outputs); weights: (d, K)
    first-layer weights (row j: feature j's weight to each of K hidden units); lam: the penalty times
    the step size; m: the hierarchy bound M. Returns the new (theta, weights): the solution of
    min 1/2 ||theta_j - b||^2 + 1/2 ||W_j - w||^2 + lam ||b||  s.t.  ||w||_inf <= m ||b||, per j."""
    import tensorflow as tf

    theta = tf.convert_to_tensor(theta)
    weights = tf.convert_to_tensor(weights, dtype=theta.dtype)
    lam = tf.cast(lam, theta.dtype)
    m = tf.cast(m, theta.dtype)
    features, hidden = tf.shape(weights)[0], weights.shape[1]
    theta_norm = tf.norm(theta, axis=1)
    magnitudes = tf.abs(weights)
    descending = -tf.sort(-magnitudes, axis=1)
    zeros = tf.zeros((features, 1), theta.dtype)
    partial_sums = tf.concat([zeros, tf.cumsum(descending, axis=1)], axis=1)  # m = 0..K largest
    counts = tf.range(hidden + 1, dtype=theta.dtype)
    candidates = m / (1.0 + counts * m * m) * tf.nn.relu(theta_norm[:, None] + m * partial_sums - lam)
    above = tf.concat([tf.fill((features, 1), tf.constant(np.inf, theta.dtype)), descending], axis=1)
    below = tf.concat([descending, zeros], axis=1)
    # the first m with |W_(m+1)| <= w_m <= |W_(m)|; a relative tolerance absorbs rounding
    slack = 1e-6 * (1.0 + candidates)
    fits = tf.logical_and(candidates <= above + slack, candidates >= below - slack)
    first = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)
    bound = tf.gather(candidates, first, batch_dims=1)
    # theta_j's direction; for theta_j = 0 every direction solves the problem: take the first output
    first_axis = tf.one_hot(tf.zeros((features,), tf.int32), tf.shape(theta)[1], dtype=theta.dtype)
    direction = tf.where(theta_norm[:, None] > 0, tf.math.divide_no_nan(theta, theta_norm[:, None]), first_axis)
    new_theta = (bound / m)[:, None] * direction
    new_weights = tf.sign(weights) * tf.minimum(bound[:, None], magnitudes)
    return new_theta, new_weights


def lassonet_network(features: int, outputs: int, hidden_units=(32,), seed: int = 0):
    """Skip layer plus an MLP on `features` inputs, summed into `outputs` logits (or values)."""
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input((features,), name="features")
    hidden = inputs
    for index, units in enumerate(hidden_units):
        hidden = layers.Dense(units, activation="relu", name=f"hidden_{index + 1}")(hidden)
    network = layers.Dense(outputs, name="network_out")(hidden)
    skip = layers.Dense(outputs, use_bias=False, name="skip")(inputs)
    return keras.Model(inputs, layers.Add(name="output")([skip, network]), name="lassonet")


def lassonet_select(data, hidden_units=(16,), M: float = 10.0, max_features: int | None = None,
                    lambda_start: float | None = None, path_multiplier: float = 2.0, max_refinements: int = 6,
                    path_epochs: int = 10, dense_epochs: int = 100, refit_epochs: int = 100,
                    learning_rate: float = 1e-3, path_learning_rate: float = 1e-2, batch_size: int = 32,
                    validation_fraction: float = 0.2, seed: int = 0,
                    progress: Progress | None = None) -> PruneResult:
    """Train a LassoNet on `data` (flat features), follow the lambda path until no feature is left,
    then keep the path point with the best validation score among those with at most `max_features`
    features (fewer features on a tie). The returned model takes only the kept features; it starts
    from the path point's weights and is refitted for `refit_epochs` without the penalty (the paper
    too judges the selected features by a network trained on them): late on the path the penalty has
    shrunk the surviving weights as well.

    lambda_start defaults to the penalty above which a plain lasso (the skip layer alone) would keep
    no feature, the null model's largest skip gradient; the hierarchy lets the network hold features
    beyond it, so the first features drop later. Each step multiplies lambda by up to
    `path_multiplier`; a step that drops more than a tenth of the features (or more than one) is
    undone and retried with the square root of the multiplier, up to `max_refinements` times, so the
    path is coarse where nothing happens and fine where features leave. Features may re-enter along
    the path (the paper notes it too).
    The dense start uses Adam; the path uses SGD with momentum, so the prox step is the exact one."""
    import tensorflow as tf
    import tf_keras as keras

    if data.x_train.ndim != 2:
        raise TinypruneError(
            f"LassoNet selects input features of tabular data, but the samples have shape {data.x_train.shape[1:]}",
            "use LassoNet on (samples, features) data; for images use --method structured",
        )
    if not hidden_units:
        raise TinypruneError("LassoNet needs at least one hidden layer (its first layer is W)",
                             "give hidden_units=(16,) or more")
    if M <= 0 or path_multiplier <= 1.0:
        raise TinypruneError(f"LassoNet needs M > 0 and a path multiplier > 1 (got {M}, {path_multiplier})",
                             "e.g. M = 10 (the paper's default) and a multiplier of 2")
    seed_everything(seed)
    x_fit, y_fit, x_val, y_val = _validation_split(data, validation_fraction, seed)
    features = data.x_train.shape[1]
    outputs = data.classes if data.task == "classification" else 1
    net = lassonet_network(features, outputs, hidden_units, seed)
    skip, first = net.get_layer("skip"), net.get_layer("hidden_1")
    loss_fn = compile_for_task(net, data.task).loss
    batches = (tf.data.Dataset.from_tensor_slices((x_fit, y_fit))
               .shuffle(len(x_fit), seed=seed, reshuffle_each_iteration=True).batch(batch_size))

    def trainer(optimizer):
        """Train for some epochs at a penalty: gradient step, then hier-prox with penalty x step."""
        @tf.function
        def step(x, y, penalty):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, net(x, training=True))
            optimizer.apply_gradients(zip(tape.gradient(loss, net.trainable_variables), net.trainable_variables))
            theta, weights = hier_prox(skip.kernel, first.kernel, penalty * optimizer.learning_rate, M)
            skip.kernel.assign(theta)
            first.kernel.assign(weights)

        def train(epochs: int, lam: float) -> None:
            penalty = tf.constant(lam, tf.float32)
            for _ in range(epochs):
                for x, y in batches:
                    step(x, y, penalty)

        return train

    history: list[dict] = []
    trainer(keras.optimizers.Adam(learning_rate))(dense_epochs, 0.0)
    optimizer = keras.optimizers.SGD(path_learning_rate, momentum=0.9)
    train_path = trainer(optimizer)
    optimizer.build(net.trainable_variables)  # momentum slots exist before the first snapshot
    path, snapshots = [], []
    active = _active(skip)
    _record_point(path, snapshots, net, 0.0, active, x_val, y_val, data)
    lam = lambda_start if lambda_start is not None else _null_gradient_norm(net, loss_fn, x_fit, y_fit)
    multiplier, refinements = path_multiplier, 0
    while active.any():
        state = (net.get_weights(), [v.numpy() for v in optimizer.variables])
        train_path(path_epochs, lam)
        now_active = _active(skip)
        if active.sum() - now_active.sum() > max(1, active.sum() // 10) and refinements < max_refinements:
            # too many features left at once: step back and take a smaller lambda step
            net.set_weights(state[0])
            for variable, value in zip(optimizer.variables, state[1]):
                variable.assign(value)
            lam /= multiplier
            multiplier, refinements = multiplier ** 0.5, refinements + 1
            lam *= multiplier
            continue
        active = now_active
        _record_point(path, snapshots, net, lam, active, x_val, y_val, data)
        history.append({"phase": "lassonet path", **path[-1]})
        if progress is not None:
            progress("lassonet path", features - path[-1]["features"], features, path[-1])  # features gone
        multiplier, refinements = min(path_multiplier, multiplier ** 2), max(0, refinements - 1)
        lam *= multiplier

    chosen = _choose(path, max_features)
    net.set_weights(snapshots[chosen])
    kept = np.flatnonzero(_active(skip))
    smaller = _compact_inputs(net, kept, outputs, hidden_units)
    selected = restrict_features(data, kept)
    path_test_score = model_score(smaller, selected.x_test, data.y_test, data.task)
    if refit_epochs:
        compile_for_task(smaller, data.task, learning_rate)
        fit(smaller, x_fit[:, kept], y_fit, refit_epochs, batch_size, "lassonet refit", progress,
            callbacks=[history_recorder("lassonet refit", history)])
    details = {
        "kept_features": {"indices": kept.tolist(),
                          "names": list(selected.feature_names) if selected.feature_names else None},
        "input_features_before": int(features),
        "input_features_after": int(len(kept)),
        "M": M,
        "lambda": path[chosen]["lambda"],
        "path": path,
        "test_score_on_path": path_test_score,
        "test_score_after_refit": model_score(smaller, selected.x_test, data.y_test, data.task),
        "score": model_score_name(data.task),
    }
    return PruneResult(detached_copy(smaller), "lassonet", details, history)


def restrict_features(data, indices):
    """The data set with only the given feature columns (what the compacted model reads): the
    pipeline calibrates, scores and exports with it."""
    from dataclasses import replace

    indices = np.asarray(indices, dtype=np.int64)
    names = tuple(data.feature_names[i] for i in indices) if data.feature_names else None
    x_calib = data.x_calib[:, indices] if data.x_calib is not None else None
    return replace(data, x_train=data.x_train[:, indices], x_test=data.x_test[:, indices], x_calib=x_calib,
                   feature_names=names)


def _validation_split(data, fraction: float, seed: int):
    """A seeded (stratified for classes) part of the training data that picks the path point."""
    from sklearn.model_selection import train_test_split

    stratify = data.y_train if data.task == "classification" else None
    x_fit, x_val, y_fit, y_val = train_test_split(data.x_train, data.y_train, test_size=fraction,
                                                  random_state=seed, stratify=stratify)
    return x_fit, y_fit, x_val, y_val


def _active(skip) -> np.ndarray:
    """Which features are still selected: a non-zero skip row (the hierarchy zeroes W_j with it)."""
    return np.linalg.norm(np.asarray(skip.kernel), axis=1) > 0


def _record_point(path: list, snapshots: list, net, lam: float, active: np.ndarray, x_val, y_val, data) -> None:
    """Append one path point: lambda, features left, validation and test score; keep its weights."""
    path.append({"lambda": float(lam), "features": int(active.sum()),
                 "validation_score": model_score(net, x_val, y_val, data.task),
                 "test_score": model_score(net, data.x_test, data.y_test, data.task)})
    snapshots.append(net.get_weights())


def _null_gradient_norm(net, loss_fn, x, y) -> float:
    """max_j ||dLoss/dtheta_j|| with every feature weight at zero: the lasso's lambda_max."""
    import tensorflow as tf
    import tf_keras as keras

    null = keras.models.clone_model(net)
    null.set_weights(net.get_weights())
    for name in ("skip", "hidden_1"):
        kernel = null.get_layer(name).kernel
        kernel.assign(tf.zeros_like(kernel))
    with tf.GradientTape() as tape:
        loss = loss_fn(y, null(x, training=False))
    gradient = tape.gradient(loss, null.get_layer("skip").kernel)
    return float(tf.reduce_max(tf.norm(gradient, axis=1)))


def _choose(path: list[dict], max_features: int | None) -> int:
    """The path point with the best validation score (fewest features on a tie) within the budget."""
    allowed = [i for i, point in enumerate(path)
               if point["features"] > 0 and (max_features is None or point["features"] <= max_features)]
    if not allowed:
        raise TinypruneError(
            f"the LassoNet path has no point with 1 to {max_features} features",
            "raise max_features, or lower path_multiplier so that the path passes through fewer features",
        )
    return max(allowed, key=lambda i: (path[i]["validation_score"], -path[i]["features"], -i))


def _compact_inputs(net, kept: np.ndarray, outputs: int, hidden_units):
    """The same network reading only the kept features: the skip and first-layer rows of the dropped
    features are zero (the hierarchy), so the outputs are unchanged."""
    smaller = lassonet_network(len(kept), outputs, hidden_units)
    for layer in net.layers:
        weights = layer.get_weights()
        if layer.name in ("skip", "hidden_1"):
            weights = [weights[0][kept]] + weights[1:]
        smaller.get_layer(layer.name).set_weights(weights)
    return smaller
