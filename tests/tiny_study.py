"""A dataset that only tells a trial which feature it lost, for tests of the runtime."""

import inspect

from maggy.ablation import MaggyDataset


class FeatureTag(MaggyDataset):
    """Holds no data, only the name of the ablated feature (``None`` in the base trial)."""

    def __init__(self):
        self.ablated = None

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return i

    def ablate_feature(self, feature):
        self.ablated = feature


#: Source of :class:`FeatureTag`, for driver scripts the tests run in their own process.
SOURCE = "from maggy.ablation import MaggyDataset\n\n\n" + inspect.getsource(FeatureTag)
