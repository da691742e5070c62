//! Query results as plain rows of values, for the report and for typed
//! reads in the analytics.

use crate::{BatchError, Result};
use datafusion::arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use serde::Serialize;

/// One value of a result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// Any integer type.
    Int(i64),
    /// Any floating-point or decimal type.
    Float(f64),
    /// Anything else, as text.
    Text(String),
}

impl Value {
    /// As a float (integers widen; NULL and text are `None`).
    pub fn f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// As an integer (floats are `None`: the queries say which they return).
    pub fn i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// As text.
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// A query result: column names and rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// Converts collected record batches.
    pub fn from_batches(batches: &[RecordBatch]) -> Result<Table> {
        let mut table = Table::default();
        let Some(first) = batches.first() else {
            return Ok(table);
        };
        table.columns = first
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for batch in batches {
            let mut columns: Vec<Vec<Value>> = Vec::with_capacity(batch.num_columns());
            for col in batch.columns() {
                columns.push(values(col.as_ref())?);
            }
            for r in 0..batch.num_rows() {
                table.rows.push(
                    columns
                        .iter()
                        .map(|c| c.get(r).cloned().unwrap_or(Value::Null))
                        .collect(),
                );
            }
        }
        Ok(table)
    }

    /// Index of a column by name.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| BatchError::Corrupt(format!("query result has no column {name}")))
    }

    /// A cell by row index and column name.
    pub fn get(&self, row: usize, name: &str) -> Result<&Value> {
        let c = self.column(name)?;
        self.rows
            .get(row)
            .and_then(|r| r.get(c))
            .ok_or_else(|| BatchError::Corrupt(format!("query result has no row {row}")))
    }

    /// A float cell (NULL reads as 0).
    pub fn f64(&self, row: usize, name: &str) -> Result<f64> {
        Ok(self.get(row, name)?.f64().unwrap_or(0.0))
    }

    /// An integer cell (NULL reads as 0).
    pub fn i64(&self, row: usize, name: &str) -> Result<i64> {
        let v = self.get(row, name)?;
        Ok(v.i64().or_else(|| v.f64().map(|f| f as i64)).unwrap_or(0))
    }

    /// A text cell (NULL reads as empty).
    pub fn text(&self, row: usize, name: &str) -> Result<String> {
        Ok(self.get(row, name)?.text().unwrap_or_default().to_string())
    }
}

fn values(col: &dyn Array) -> Result<Vec<Value>> {
    let dt = col.data_type();
    let out = if dt.is_integer() {
        let c = cast(col, &DataType::Int64)?;
        let a = c
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| BatchError::Corrupt("cast to Int64".into()))?;
        (0..a.len())
            .map(|i| {
                if a.is_null(i) {
                    Value::Null
                } else {
                    Value::Int(a.value(i))
                }
            })
            .collect()
    } else if dt.is_floating() || matches!(dt, DataType::Decimal128(..) | DataType::Decimal256(..))
    {
        let c = cast(col, &DataType::Float64)?;
        let a = c
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| BatchError::Corrupt("cast to Float64".into()))?;
        (0..a.len())
            .map(|i| {
                if a.is_null(i) {
                    Value::Null
                } else {
                    Value::Float(a.value(i))
                }
            })
            .collect()
    } else {
        let c = cast(col, &DataType::Utf8)?;
        let a = c
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| BatchError::Corrupt("cast to Utf8".into()))?;
        (0..a.len())
            .map(|i| {
                if a.is_null(i) {
                    Value::Null
                } else {
                    Value::Text(a.value(i).to_string())
                }
            })
            .collect()
    };
    Ok(out)
}
