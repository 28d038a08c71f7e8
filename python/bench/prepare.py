"""Prepares the fixed inputs of python/bench/load_time.py: the 120 MB RandomForest of speed.py
as forest.joblib, sealed as forest-none.mseal and forest-auto.mseal, an Iris tree (iris.joblib,
iris.mseal), and the keys. Archives made once can then be loaded by two builds of the package
(say, two releases in two venvs) to compare them on the same bytes.

    python python/bench/prepare.py DIR
"""
import os, sys, joblib, modelseal
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
d = sys.argv[1]; os.makedirs(d, exist_ok=True)
X, y = make_classification(n_samples=200_000, n_features=40, n_informative=20, random_state=0)
f = RandomForestClassifier(n_estimators=60, n_jobs=2, random_state=0).fit(X, y); f.n_jobs = 1
joblib.dump(f, f"{d}/forest.joblib")
a = modelseal.keygen(f"{d}/alice"); b = modelseal.keygen(f"{d}/bob")
for c in ("none", "auto"):
    modelseal.dump(f, f"{d}/forest-{c}.mseal", signing_key=a[0], recipients=[b[1]], name="f", version="1.0.0", compress=c)
from sklearn.tree import DecisionTreeClassifier
from sklearn.datasets import load_iris
Xi, yi = load_iris(return_X_y=True)
modelseal.dump(DecisionTreeClassifier(random_state=0).fit(Xi, yi), f"{d}/iris.mseal", signing_key=a[0], recipients=[b[1]], name="i", version="1.0.0")
joblib.dump(DecisionTreeClassifier(random_state=0).fit(Xi, yi), f"{d}/iris.joblib")
print("prepared")
