//! Decision trees with linfa-trees: training on Iris or a CSV file, and prediction input parsing.

use std::path::Path;

use linfa::prelude::*;
use linfa_trees::DecisionTree;
use ndarray::{Array1, Array2};

use crate::error::{IoContext, ModelError, Result};

/// The tree type modelseal trains and loads.
pub type Tree = DecisionTree<f64, usize>;

/// Hyperparameters exposed on the command line.
#[derive(Clone, Copy, Debug, Default)]
pub struct TreeParams {
    /// Maximum depth (none: grow until pure).
    pub max_depth: Option<usize>,
    /// Minimum number of samples to split a node (linfa's default when none).
    pub min_samples_split: Option<usize>,
}

/// A trained tree and what the manifest should record about it.
pub struct Trained {
    /// The model.
    pub model: Tree,
    /// Accuracy on the training data.
    pub train_accuracy: f64,
    /// Class names, by class number.
    pub class_names: Vec<String>,
    /// Feature names, in input order.
    pub feature_names: Vec<String>,
    /// Number of training rows.
    pub rows: usize,
}

/// The archive path of a trained tree.
pub const TREE_PATH: &str = "model/tree.bincode";

/// Encodes a trained tree as an archive's typed model, recording `linfa_version` as the linfa-trees
/// release it was built with, and fills the manifest details: classes, features, training accuracy
/// and the linfa-trees requirement.
pub fn sealable(
    trained: &Trained,
    linfa_version: &str,
    details: &mut crate::seal::Details,
) -> Result<Vec<crate::seal::Input>> {
    let (bytes, typed) = super::encode_model(
        &trained.model,
        TREE_PATH,
        &[(super::LINFA_TREES, linfa_version)],
    )?;
    details.typed_model = Some(typed);
    details.class_names = trained.class_names.clone();
    details.feature_names = trained.feature_names.clone();
    details
        .metrics
        .insert("train_accuracy".into(), trained.train_accuracy);
    details
        .requires
        .entry(super::LINFA_TREES.into())
        .or_insert_with(|| linfa_version.into());
    Ok(vec![crate::seal::Input {
        archive_path: crate::format::manifest::SafeRelPath::parse(
            TREE_PATH,
            crate::limits::HARD_MAX_PATH_BYTES,
        )?,
        source: crate::seal::Source::Bytes(bytes),
    }])
}

/// The Iris class names, by class number.
pub const IRIS_CLASSES: [&str; 3] = ["setosa", "versicolor", "virginica"];

fn fit(dataset: &Dataset<f64, usize, ndarray::Ix1>, p: TreeParams) -> Result<(Tree, f64)> {
    let mut params = DecisionTree::params().max_depth(p.max_depth);
    if let Some(n) = p.min_samples_split {
        params = params.min_weight_split(n as f32);
    }
    let model = params.fit(dataset).map_err(|e| ModelError::Training {
        detail: e.to_string(),
    })?;
    let pred = model.predict(dataset);
    let accuracy = pred
        .confusion_matrix(dataset)
        .map_err(|e| ModelError::Training {
            detail: e.to_string(),
        })?
        .accuracy();
    Ok((model, f64::from(accuracy)))
}

/// Trains on the Iris data embedded in linfa-datasets (150 rows, 4 features, 3 classes).
pub fn train_iris(p: TreeParams) -> Result<Trained> {
    let ds = linfa_datasets::iris();
    let feature_names = ds.feature_names().to_vec();
    let rows = ds.nsamples();
    let (model, train_accuracy) = fit(&ds, p)?;
    Ok(Trained {
        model,
        train_accuracy,
        class_names: IRIS_CLASSES.iter().map(|s| s.to_string()).collect(),
        feature_names,
        rows,
    })
}

/// Trains on a CSV file with a header row; `target` names the class column (any strings; classes are
/// numbered in sorted order). Every other column must be a finite number.
pub fn train_csv(path: &Path, target: &str, p: TreeParams) -> Result<Trained> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| csv_io(path, e))?;
    let headers = rdr.headers().map_err(|e| csv_io(path, e))?.clone();
    let t = headers
        .iter()
        .position(|h| h == target)
        .ok_or_else(|| ModelError::BadInput {
            row: 0,
            detail: format!("no column named {target:?} in the header"),
        })?;
    let feature_names: Vec<String> = headers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != t)
        .map(|(_, h)| h.to_owned())
        .collect();
    let mut labels = Vec::new();
    let mut values = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| ModelError::BadInput {
            row: i + 1,
            detail: e.to_string(),
        })?;
        if rec.len() != headers.len() {
            return Err(ModelError::BadInput {
                row: i + 1,
                detail: format!("{} columns, the header has {}", rec.len(), headers.len()),
            }
            .into());
        }
        for (j, field) in rec.iter().enumerate() {
            if j == t {
                labels.push(field.to_owned());
            } else {
                values.push(parse_number(field, i + 1)?);
            }
        }
    }
    if labels.is_empty() {
        return Err(ModelError::BadInput {
            row: 1,
            detail: "no data rows".into(),
        }
        .into());
    }
    let mut class_names: Vec<String> = labels.clone();
    class_names.sort();
    class_names.dedup();
    let targets: Array1<usize> = labels
        .iter()
        .map(|l| {
            class_names
                .binary_search(l)
                .expect("label is in the class list")
        })
        .collect();
    let rows = labels.len();
    let records = Array2::from_shape_vec((rows, feature_names.len()), values).map_err(|e| {
        ModelError::Training {
            detail: e.to_string(),
        }
    })?;
    let ds = Dataset::new(records, targets).with_feature_names(feature_names.clone());
    let (model, train_accuracy) = fit(&ds, p)?;
    Ok(Trained {
        model,
        train_accuracy,
        class_names,
        feature_names,
        rows,
    })
}

fn csv_io(path: &Path, e: csv::Error) -> crate::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Err::<(), _>(io)
            .context(|| format!("reading {}", path.display()))
            .unwrap_err(),
        other => ModelError::BadInput {
            row: 0,
            detail: format!("{other:?}"),
        }
        .into(),
    }
}

fn parse_number(field: &str, row: usize) -> Result<f64, ModelError> {
    let v: f64 = field.trim().parse().map_err(|_| ModelError::BadInput {
        row,
        detail: format!("{field:?} is not a number"),
    })?;
    if !v.is_finite() {
        return Err(ModelError::BadInput {
            row,
            detail: format!("{field:?} is not a finite number"),
        });
    }
    Ok(v)
}

/// Parses one `--input` row: comma-separated finite numbers, exactly `features` of them.
pub fn parse_row(s: &str, row: usize, features: usize) -> Result<Vec<f64>, ModelError> {
    let v = s
        .split(',')
        .map(|f| parse_number(f, row))
        .collect::<Result<Vec<_>, _>>()?;
    if v.len() != features {
        return Err(ModelError::BadInput {
            row,
            detail: format!("{} values, the model takes {features}", v.len()),
        });
    }
    Ok(v)
}

/// Reads prediction rows from a CSV file with a header row of `features` columns.
pub fn read_rows_csv(path: &Path, features: usize) -> Result<Vec<Vec<f64>>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_path(path)
        .map_err(|e| csv_io(path, e))?;
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| ModelError::BadInput {
            row: i + 1,
            detail: e.to_string(),
        })?;
        if rec.len() != features {
            return Err(ModelError::BadInput {
                row: i + 1,
                detail: format!("{} values, the model takes {features}", rec.len()),
            }
            .into());
        }
        rows.push(
            rec.iter()
                .map(|f| parse_number(f, i + 1))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    Ok(rows)
}

/// Predicts a class for each row.
pub fn predict(model: &Tree, rows: &[Vec<f64>]) -> Result<Vec<usize>> {
    let features = rows.first().map_or(0, Vec::len);
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    let x =
        Array2::from_shape_vec((rows.len(), features), flat).map_err(|e| ModelError::BadInput {
            row: 0,
            detail: e.to_string(),
        })?;
    Ok(model.predict(&x).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iris_tree_predicts_setosa() {
        let t = train_iris(TreeParams::default()).unwrap();
        assert!(t.train_accuracy > 0.95, "{}", t.train_accuracy);
        assert_eq!(
            predict(&t.model, &[vec![5.1, 3.5, 1.4, 0.2]]).unwrap(),
            vec![0]
        );
        assert_eq!(t.feature_names.len(), 4);
    }

    #[test]
    fn bad_rows_name_the_row() {
        assert!(matches!(
            parse_row("1,2,3", 2, 4),
            Err(ModelError::BadInput { row: 2, .. })
        ));
        assert!(matches!(
            parse_row("1,2,NaN,4", 3, 4),
            Err(ModelError::BadInput { row: 3, .. })
        ));
        assert!(matches!(
            parse_row("1,x,3,4", 1, 4),
            Err(ModelError::BadInput { row: 1, .. })
        ));
    }
}
