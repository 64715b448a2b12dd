"""Learning-rate schedules: objects called with the optimizer's step count
(0 for the first update) that return the learning rate for that step. Pass one
as ``learning_rate`` to an optimizer."""
import math


class Schedule:
    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        return dict(self.__dict__)


class StepDecay(Schedule):
    """lr = initial * gamma ** (step // step_size)   (PyTorch's StepLR, counted in updates)."""

    def __init__(self, initial_learning_rate, step_size, gamma=0.1):
        if step_size <= 0:
            raise ValueError(f"step_size must be positive; got {step_size!r}")
        self.initial_learning_rate, self.step_size, self.gamma = float(initial_learning_rate), int(step_size), float(gamma)

    def __call__(self, step):
        return self.initial_learning_rate * self.gamma ** (step // self.step_size)


class ExponentialDecay(Schedule):
    """lr = initial * decay_rate ** (step / decay_steps), floored exponent with staircase=True (Keras)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        if decay_steps <= 0:
            raise ValueError(f"decay_steps must be positive; got {decay_steps!r}")
        self.initial_learning_rate, self.decay_steps = float(initial_learning_rate), int(decay_steps)
        self.decay_rate, self.staircase = float(decay_rate), bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p


class CosineDecay(Schedule):
    """lr = initial * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps)) + alpha) (Keras)."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0):
        if decay_steps <= 0:
            raise ValueError(f"decay_steps must be positive; got {decay_steps!r}")
        self.initial_learning_rate, self.decay_steps, self.alpha = float(initial_learning_rate), int(decay_steps), float(alpha)

    def __call__(self, step):
        frac = min(step, self.decay_steps) / self.decay_steps
        return self.initial_learning_rate * ((1 - self.alpha) * 0.5 * (1 + math.cos(math.pi * frac)) + self.alpha)


SCHEDULES = {cls.__name__: cls for cls in (StepDecay, ExponentialDecay, CosineDecay)}


def serialize(schedule):
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(spec):
    if spec["class_name"] not in SCHEDULES:
        raise ValueError(f"unknown schedule {spec['class_name']!r}; known: {sorted(SCHEDULES)}")
    return SCHEDULES[spec["class_name"]](**spec["config"])
