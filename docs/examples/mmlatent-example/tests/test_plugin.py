"""Contract tests from mmlatent.testing: pytest runs every check of the base classes."""

from mmlatent.testing import DatasetContract, ModalityContract


class TestCategoryModality(ModalityContract):
    kind = "category"
    options = {"num_categories": 5, "hidden": 16}
    latent_dim = 2

    def raw_values(self):  # as the datasets yield them
        return [0, 3, 4, 1]


class TestRemaindersDataset(DatasetContract):
    name = "remainders"

    def make_options(self, tmp_path):
        return {"size": 20, "modulus": 4}
