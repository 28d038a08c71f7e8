"""Real fitted scikit-learn models: every estimator of ``all_estimators()`` and the composites people
build from them. The profile generator (``make_profiles.py``) records the globals their pickles
use; the breadth test (``python/tests/test_breadth.py``) loads each through ``modelseal.load`` with
the defaults and compares its outputs with the original's.

Each model is a :class:`Case`: a name, a fitted estimator and the input its outputs are computed
on. Nothing here downloads data: the data sets ship with scikit-learn or are generated.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Tuple

import numpy as np

#: The methods whose outputs are compared after a round trip.
OUTPUT_METHODS = (
    "predict",
    "predict_proba",
    "decision_function",
    "transform",
    "score_samples",
)


@dataclass
class Case:
    name: str
    model: Any
    X: Any


def _iris() -> Tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return X, y


def _frame() -> Tuple[Any, np.ndarray]:
    import pandas as pd

    rng = np.random.RandomState(0)
    n = 120
    df = pd.DataFrame(
        {
            "age": rng.randint(18, 80, n).astype(float),
            "income": rng.lognormal(10, 1, n),
            "city": rng.choice(["paris", "lyon", "nice"], n),
            "plan": pd.Categorical(rng.choice(["a", "b"], n)),
        }
    )
    y = (df["age"] > 45).astype(int).to_numpy() ^ (df["city"] == "nice").to_numpy()
    return df, y


_TEXT = [
    "the model is sealed",
    "a signed archive of the model",
    "pickle runs arbitrary code",
    "joblib files are pickles",
    "verify the signature first",
    "the archive is encrypted",
] * 5


def _fit_estimator(est: Any) -> Tuple[Any, Any]:
    """Fits one default-constructed estimator on data its tags accept; returns (fitted, X)."""
    from sklearn.base import is_classifier, is_regressor
    from sklearn.utils import get_tags
    from sklearn.utils.estimator_checks import (
        _enforce_estimator_tags_X,
        _enforce_estimator_tags_y,
    )

    tags = get_tags(est)
    X, y = _iris()
    if tags.input_tags.string and not tags.input_tags.two_d_array:
        est.fit(_TEXT, np.arange(len(_TEXT)) % 2)
        return est, _TEXT
    if tags.input_tags.dict:
        d = [{"a": float(i % 3), "b": float(i % 5), "c": 1.0} for i in range(30)]
        est.fit(d, np.arange(30) % 2)
        return est, d
    if not tags.input_tags.two_d_array and tags.target_tags.one_d_labels:
        labels = np.array(["a", "b", "c"] * 10)
        est.fit(labels)
        return est, labels
    if tags.target_tags.two_d_labels and not tags.input_tags.two_d_array:
        labels = [["a", "b"], ["b"], ["c"], ["a"]] * 5
        est.fit(labels)
        return est, labels
    X = _enforce_estimator_tags_X(est, X)
    if type(est).__name__ == "SparseCoder":
        X = X[:, : est.dictionary.shape[1]]
    if is_regressor(est):
        yy = X[:, 0] * 2.0 + X[:, 1] if X.ndim == 2 and X.shape[1] > 1 else y.astype(float)
    else:
        yy = y
    yy = _enforce_estimator_tags_y(est, yy)
    if tags.target_tags.multi_output and not tags.target_tags.single_output:
        yy = np.c_[yy, yy[::-1]]
    try:
        est.fit(X, yy)
    except TypeError:
        est.fit(X)
    return est, X


def estimators() -> Iterator[Case]:
    """One fitted instance of every estimator class of ``all_estimators()`` (as scikit-learn's own
    common tests construct them). An estimator that cannot be fitted here raises: the caller
    reports it as a miss of its own, never silently."""
    from sklearn.utils import all_estimators
    from sklearn.utils._test_common.instance_generator import _construct_instances

    for name, Estimator in all_estimators():
        try:
            est = next(iter(_construct_instances(Estimator)))
        except Exception as e:  # SkipTest for FrozenEstimator
            yield Case(name, e, None)
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted, X = _fit_estimator(est)
        except Exception as e:
            yield Case(name, e, None)
            continue
        yield Case(name, fitted, X)


def _composites() -> List[Tuple[str, Callable[[], Tuple[Any, Any]]]]:
    from scipy import stats
    from sklearn import (
        calibration,
        compose,
        ensemble,
        feature_extraction,
        feature_selection,
        impute,
        linear_model,
        metrics,
        model_selection,
        multiclass,
        multioutput,
        neighbors,
        pipeline,
        preprocessing,
        semi_supervised,
        svm,
        tree,
        decomposition,
    )
    from sklearn.experimental import enable_halving_search_cv, enable_iterative_imputer  # noqa: F401

    X, y = _iris()
    df, dy = _frame()
    num, cat = ["age", "income"], ["city", "plan"]

    def fit(model: Any, data: Any = None, target: Any = None) -> Tuple[Any, Any]:
        data = X if data is None else data
        target = y if target is None else target
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(data, target)
        return model, data

    def ct(**kw: Any) -> Any:
        return compose.ColumnTransformer(
            [
                ("num", preprocessing.StandardScaler(), num),
                ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"), cat),
            ],
            **kw,
        )

    sel = compose.make_column_selector
    cases = [
        ("pipeline_scaler_logreg", lambda: fit(pipeline.make_pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression()))),
        ("column_transformer_frame", lambda: fit(pipeline.make_pipeline(ct(), linear_model.LogisticRegression()), df, dy)),
        ("column_transformer_remainder", lambda: fit(compose.ColumnTransformer([("num", preprocessing.StandardScaler(), ["age"])], remainder="passthrough").set_output(transform="default"), df[num], dy)),
        ("column_transformer_selector", lambda: fit(pipeline.make_pipeline(compose.ColumnTransformer([("num", preprocessing.StandardScaler(), sel(dtype_include=np.number)), ("cat", preprocessing.OneHotEncoder(), sel(dtype_exclude=np.number))]), linear_model.LogisticRegression()), df, dy)),
        ("column_transformer_slice", lambda: fit(pipeline.make_pipeline(compose.ColumnTransformer([("a", preprocessing.StandardScaler(), slice(0, 2)), ("b", preprocessing.MinMaxScaler(), [2, 3])]), svm.SVC()))),
        ("column_transformer_forest", lambda: fit(pipeline.make_pipeline(ct(sparse_threshold=0), ensemble.RandomForestClassifier(n_estimators=10, random_state=0)), df, dy)),
        ("column_transformer_ordinal_hgb", lambda: fit(pipeline.make_pipeline(compose.ColumnTransformer([("cat", preprocessing.OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), cat)], remainder="passthrough"), ensemble.HistGradientBoostingClassifier(max_iter=20)), df, dy)),
        ("column_transformer_target_encoder", lambda: fit(pipeline.make_pipeline(compose.ColumnTransformer([("cat", preprocessing.TargetEncoder(), cat)], remainder="passthrough"), linear_model.LogisticRegression()), df, dy)),
        ("column_transformer_imputer_strings", lambda: fit(pipeline.make_pipeline(compose.ColumnTransformer([("cat", pipeline.make_pipeline(impute.SimpleImputer(strategy="most_frequent"), preprocessing.OneHotEncoder()), ["city"])]), tree.DecisionTreeClassifier(random_state=0)), df, dy)),
        ("hgb_categorical_frame", lambda: fit(ensemble.HistGradientBoostingClassifier(max_iter=20, categorical_features="from_dtype"), df[["age", "plan"]], dy)),
        ("grid_search_svc", lambda: fit(model_selection.GridSearchCV(svm.SVC(), {"C": [1, 10]}, scoring="accuracy"))),
        ("grid_search_make_scorer", lambda: fit(model_selection.GridSearchCV(linear_model.LogisticRegression(), {"C": [0.1, 1]}, scoring=metrics.make_scorer(metrics.f1_score, average="macro")))),
        ("grid_search_multi_scoring", lambda: fit(model_selection.GridSearchCV(tree.DecisionTreeClassifier(random_state=0), {"max_depth": [2, 3]}, scoring={"acc": "accuracy", "f1": "f1_macro"}, refit="acc"))),
        ("grid_search_pipeline_frame", lambda: fit(model_selection.GridSearchCV(pipeline.make_pipeline(ct(), linear_model.LogisticRegression()), {"logisticregression__C": [0.5, 1.0]}, cv=3), df, dy)),
        ("randomized_search_distributions", lambda: fit(model_selection.RandomizedSearchCV(linear_model.LogisticRegression(), {"C": stats.loguniform(0.01, 10), "tol": stats.uniform(1e-4, 1e-3)}, n_iter=3, random_state=0))),
        ("randomized_search_randint", lambda: fit(model_selection.RandomizedSearchCV(tree.DecisionTreeClassifier(random_state=0), {"max_depth": stats.randint(2, 5)}, n_iter=3, random_state=0))),
        ("halving_grid_search", lambda: fit(model_selection.HalvingGridSearchCV(tree.DecisionTreeClassifier(random_state=0), {"max_depth": [2, 3, 4]}, random_state=0))),
        ("calibrated_linear_svc", lambda: fit(calibration.CalibratedClassifierCV(svm.LinearSVC()))),
        ("stacking_classifier", lambda: fit(ensemble.StackingClassifier([("lr", linear_model.LogisticRegression()), ("dt", tree.DecisionTreeClassifier(random_state=0))]))),
        ("stacking_regressor", lambda: fit(ensemble.StackingRegressor([("ridge", linear_model.Ridge()), ("knn", neighbors.KNeighborsRegressor())]), X, X[:, 0])),
        ("voting_soft", lambda: fit(ensemble.VotingClassifier([("lr", linear_model.LogisticRegression()), ("rf", ensemble.RandomForestClassifier(n_estimators=5, random_state=0))], voting="soft"))),
        ("voting_regressor", lambda: fit(ensemble.VotingRegressor([("lr", linear_model.LinearRegression()), ("dt", tree.DecisionTreeRegressor(random_state=0))]), X, X[:, 0])),
        ("function_transformer_ufunc", lambda: fit(pipeline.make_pipeline(preprocessing.FunctionTransformer(np.log1p, inverse_func=np.expm1), linear_model.LogisticRegression()))),
        ("transformed_target", lambda: fit(compose.TransformedTargetRegressor(linear_model.LinearRegression(), func=np.log1p, inverse_func=np.expm1), X, X[:, 0])),
        ("forest_random_state_object", lambda: fit(ensemble.RandomForestClassifier(n_estimators=5, random_state=np.random.RandomState(0)))),
        ("sgd_random_state_object", lambda: fit(linear_model.SGDClassifier(random_state=np.random.RandomState(1)))),
        ("kmeans_generator_attr", lambda: _with_generator()),
        ("gradient_boosting", lambda: fit(ensemble.GradientBoostingClassifier(n_estimators=10, random_state=0))),
        ("hgb_regressor_quantile", lambda: fit(ensemble.HistGradientBoostingRegressor(loss="quantile", quantile=0.8, max_iter=10), X, X[:, 0])),
        ("text_tfidf_svc", lambda: fit(pipeline.make_pipeline(feature_extraction.text.TfidfVectorizer(), svm.LinearSVC()), _TEXT, np.arange(len(_TEXT)) % 2)),
        ("text_count_nb", lambda: fit(pipeline.make_pipeline(feature_extraction.text.CountVectorizer(ngram_range=(1, 2)), __import__("sklearn.naive_bayes", fromlist=["x"]).MultinomialNB()), _TEXT, np.arange(len(_TEXT)) % 2)),
        ("feature_union", lambda: fit(pipeline.make_pipeline(pipeline.make_union(decomposition.PCA(2), feature_selection.SelectKBest(k=2)), linear_model.LogisticRegression()))),
        ("select_k_best_f_classif", lambda: fit(pipeline.make_pipeline(feature_selection.SelectKBest(feature_selection.f_classif, k=2), svm.SVC()))),
        ("select_percentile_mutual_info", lambda: fit(pipeline.make_pipeline(feature_selection.SelectPercentile(feature_selection.mutual_info_classif, percentile=50), linear_model.LogisticRegression()))),
        ("one_vs_rest", lambda: fit(multiclass.OneVsRestClassifier(linear_model.LogisticRegression()))),
        ("bagging_trees", lambda: fit(ensemble.BaggingClassifier(tree.DecisionTreeClassifier(), n_estimators=5, random_state=0))),
        ("knn_pipeline", lambda: fit(pipeline.make_pipeline(preprocessing.StandardScaler(), neighbors.KNeighborsClassifier()))),
        ("knn_ball_tree", lambda: fit(neighbors.KNeighborsClassifier(algorithm="ball_tree"))),
        ("spline_ridge", lambda: fit(pipeline.make_pipeline(preprocessing.SplineTransformer(), linear_model.Ridge()), X, X[:, 0])),
        ("polynomial_linear", lambda: fit(pipeline.make_pipeline(preprocessing.PolynomialFeatures(2), linear_model.LinearRegression()), X, X[:, 0])),
        ("isolation_forest", lambda: fit(ensemble.IsolationForest(n_estimators=10, random_state=0))),
        ("kbins_discretizer", lambda: fit(pipeline.make_pipeline(preprocessing.KBinsDiscretizer(n_bins=3), linear_model.LogisticRegression()))),
        ("multi_output_classifier", lambda: fit(multioutput.MultiOutputClassifier(linear_model.LogisticRegression()), X, np.c_[y, y[::-1]])),
        ("classifier_chain", lambda: fit(multioutput.ClassifierChain(linear_model.LogisticRegression()), X, np.c_[y > 0, y > 1])),
        ("sequential_feature_selector", lambda: fit(pipeline.make_pipeline(feature_selection.SequentialFeatureSelector(linear_model.LogisticRegression(), n_features_to_select=2), linear_model.LogisticRegression()))),
        ("rfecv", lambda: fit(feature_selection.RFECV(linear_model.LogisticRegression()))),
        ("tuned_threshold", lambda: fit(model_selection.TunedThresholdClassifierCV(linear_model.LogisticRegression()), X, y > 0)),
        ("self_training", lambda: fit(semi_supervised.SelfTrainingClassifier(svm.SVC(probability=True)), X, np.where(np.arange(len(y)) % 3 == 0, y, -1))),
        ("iterative_imputer", lambda: fit(pipeline.make_pipeline(impute.IterativeImputer(random_state=0), linear_model.LogisticRegression()), np.where(np.arange(X.size).reshape(X.shape) % 7 == 0, np.nan, X))),
        ("quantile_hgb", lambda: fit(pipeline.make_pipeline(preprocessing.QuantileTransformer(n_quantiles=50), ensemble.HistGradientBoostingRegressor(max_iter=10)), X, X[:, 0])),
        ("dict_vectorizer_logreg", lambda: fit(pipeline.make_pipeline(feature_extraction.DictVectorizer(), linear_model.LogisticRegression()), [{"a": float(i % 3), "b": float(i % 5)} for i in range(30)], np.arange(30) % 2)),
        ("gaussian_process_kernels", lambda: fit(__import__("sklearn.gaussian_process", fromlist=["x"]).GaussianProcessClassifier(1.0 * __import__("sklearn.gaussian_process.kernels", fromlist=["x"]).RBF(1.0), random_state=0))),
    ]
    return cases


def _with_generator() -> Tuple[Any, Any]:
    """An estimator holding a numpy Generator (as users keep one in a fitted attribute)."""
    from sklearn.cluster import KMeans

    X, _ = _iris()
    km = KMeans(n_clusters=3, n_init=2, random_state=0).fit(X)
    km.rng_ = np.random.default_rng(0)
    return km, X


def composites() -> Iterator[Case]:
    """The realistic composites: pipelines, ColumnTransformer on DataFrames, searches with string,
    multi-metric and ``make_scorer`` scorers and scipy.stats distributions, calibration, stacking,
    voting, FunctionTransformer with numpy ufuncs, estimators holding RandomState or Generator."""
    for name, make in _composites():
        try:
            model, X = make()
        except Exception as e:
            yield Case(name, e, None)
            continue
        yield Case(name, model, X)


def outputs(model: Any, X: Any) -> dict:
    """Every output method's result on X (dense numpy arrays), keyed by method."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in OUTPUT_METHODS:
            f = getattr(model, m, None)
            if f is None:
                continue
            try:
                r = f(X)
            except Exception as e:  # a method the model has but this input does not suit
                r = ("raised", type(e).__name__)
            if hasattr(r, "toarray"):
                r = r.toarray()
            out[m] = r
    return out


def same_outputs(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, tuple) or isinstance(y, tuple):
            if x != y:
                return False
            continue
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        if x.dtype.kind in "fc":
            if not np.array_equal(x, y, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


#: The opt-in third-party profiles: profile name -> (distribution, module).
THIRD_PARTY = {
    "xgboost": ("xgboost", "xgboost"),
    "lightgbm": ("lightgbm", "lightgbm"),
    "catboost": ("catboost", "catboost"),
    "imblearn": ("imbalanced-learn", "imblearn"),
}


def third_party(profile: str) -> Iterator[Case]:
    """Fitted models of one third-party library that people use with scikit-learn, alone and
    inside scikit-learn pipelines and searches."""
    from sklearn import model_selection, pipeline, preprocessing

    X, y = _iris()
    Xr, yr = X, X[:, 0]
    made: List[Tuple[str, Callable[[], Any], Any, Any]] = []
    if profile == "xgboost":
        import xgboost as xgb

        made += [
            ("XGBClassifier", lambda: xgb.XGBClassifier(n_estimators=5, max_depth=2), X, y),
            ("XGBRegressor", lambda: xgb.XGBRegressor(n_estimators=5, max_depth=2), Xr, yr),
            ("XGBRFClassifier", lambda: xgb.XGBRFClassifier(n_estimators=3, max_depth=2), X, y),
            ("XGBRFRegressor", lambda: xgb.XGBRFRegressor(n_estimators=3, max_depth=2), Xr, yr),
            ("pipeline_xgb", lambda: pipeline.make_pipeline(preprocessing.StandardScaler(), xgb.XGBClassifier(n_estimators=5)), X, y),
            ("grid_xgb", lambda: model_selection.GridSearchCV(xgb.XGBClassifier(n_estimators=3), {"max_depth": [2, 3]}, cv=3), X, y),
        ]
    elif profile == "lightgbm":
        import lightgbm as lgb

        made += [
            ("LGBMClassifier", lambda: lgb.LGBMClassifier(n_estimators=5, verbose=-1), X, y),
            ("LGBMRegressor", lambda: lgb.LGBMRegressor(n_estimators=5, verbose=-1), Xr, yr),
            ("pipeline_lgbm", lambda: pipeline.make_pipeline(preprocessing.StandardScaler(), lgb.LGBMClassifier(n_estimators=5, verbose=-1)), X, y),
            ("grid_lgbm", lambda: model_selection.GridSearchCV(lgb.LGBMClassifier(n_estimators=3, verbose=-1), {"num_leaves": [4, 8]}, cv=3), X, y),
        ]
    elif profile == "catboost":
        import catboost as cb

        made += [
            ("CatBoostClassifier", lambda: cb.CatBoostClassifier(iterations=5, verbose=0, allow_writing_files=False), X, y),
            ("CatBoostRegressor", lambda: cb.CatBoostRegressor(iterations=5, verbose=0, allow_writing_files=False), Xr, yr),
            ("pipeline_catboost", lambda: pipeline.make_pipeline(preprocessing.StandardScaler(), cb.CatBoostClassifier(iterations=5, verbose=0, allow_writing_files=False)), X, y),
        ]
    elif profile == "imblearn":
        from imblearn import ensemble as ie, over_sampling as ov, under_sampling as un, combine
        from imblearn.pipeline import make_pipeline as imb_pipeline
        from sklearn.linear_model import LogisticRegression

        yi = (y == 0).astype(int)
        made += [
            ("BalancedRandomForestClassifier", lambda: ie.BalancedRandomForestClassifier(n_estimators=5, random_state=0), X, yi),
            ("BalancedBaggingClassifier", lambda: ie.BalancedBaggingClassifier(n_estimators=3, random_state=0), X, yi),
            ("EasyEnsembleClassifier", lambda: ie.EasyEnsembleClassifier(n_estimators=2, random_state=0), X, yi),
            ("RUSBoostClassifier", lambda: ie.RUSBoostClassifier(n_estimators=3, random_state=0), X, yi),
            ("pipeline_smote", lambda: imb_pipeline(ov.SMOTE(random_state=0), LogisticRegression()), X, yi),
            ("pipeline_random_over", lambda: imb_pipeline(ov.RandomOverSampler(random_state=0), LogisticRegression()), X, yi),
            ("pipeline_random_under", lambda: imb_pipeline(un.RandomUnderSampler(random_state=0), LogisticRegression()), X, yi),
            ("pipeline_tomek", lambda: imb_pipeline(un.TomekLinks(), LogisticRegression()), X, yi),
            ("pipeline_smoteenn", lambda: imb_pipeline(combine.SMOTEENN(random_state=0), LogisticRegression()), X, yi),
        ]
    else:
        raise ValueError(f"unknown profile {profile!r}")
    for name, make, data, target in made:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = make().fit(data, target)
        except Exception as e:
            yield Case(name, e, None)
            continue
        yield Case(name, model, data)
