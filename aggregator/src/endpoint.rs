//! The lookup API's endpoints: their routes, and the names that label
//! their latency metric.

named_enum! {
    /// The lookup endpoints; the name labels their latency metric.
    pub enum Endpoint ("endpoint") {
        /// `/v1/products/{id}/bought-together`.
        BoughtTogether = "bought_together",
        /// `/v1/products/{id}/viewed-together`.
        ViewedTogether = "viewed_together",
        /// `/v1/users/{id}/engagement`.
        Engagement = "engagement",
        /// `/v1/top-pairs`.
        TopPairs = "top_pairs",
        /// `/v1/products/{id}/daily`.
        ProductDaily = "product_daily",
    }
}

impl Endpoint {
    /// The route it is served on.
    pub fn route(self) -> &'static str {
        match self {
            Endpoint::BoughtTogether => "/v1/products/{id}/bought-together",
            Endpoint::ViewedTogether => "/v1/products/{id}/viewed-together",
            Endpoint::Engagement => "/v1/users/{id}/engagement",
            Endpoint::TopPairs => "/v1/top-pairs",
            Endpoint::ProductDaily => "/v1/products/{id}/daily",
        }
    }
}
