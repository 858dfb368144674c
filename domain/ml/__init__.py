"""Machine learning on bars, pure: the feature sets and feature matrix (:mod:`.features`) and the
training labels (:mod:`.labels`) of the trend and mean-reversion predictors."""
