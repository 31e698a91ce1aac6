//! The splitmix64 recipe generator reproduces the stored large arrays.
mod common;

#[test]
fn every_recipe_regenerates_its_checks() {
    let all = common::load("stat_vectors.json");
    let mut seen = 0;
    for case in all["cases"].as_array().unwrap() {
        for key in ["x", "y"] {
            if let Some(recipe) = case["inputs"].get(format!("{key}_recipe")) {
                let v = common::from_recipe(recipe);
                let check = &recipe["check"];
                let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
                let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(min, common::num(&check["min"]));
                assert_eq!(max, common::num(&check["max"]));
                seen += 1;
            }
        }
    }
    assert!(seen > 0);
}
