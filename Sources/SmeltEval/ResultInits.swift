// Public memberwise initialisers of the result types, for results that come from
// elsewhere (llama-perplexity logs imported into the results store).

extension Distribution {
    /// A distribution summary from its printed values (p75/p25 are printed only for Δp).
    public init(maximum: Double, p99_9: Double, p99: Double, p95: Double, p90: Double, p75: Double, median: Double,
                p25: Double, p10: Double, p5: Double, p1: Double, p0_1: Double, minimum: Double) {
        self.maximum = maximum; self.p99_9 = p99_9; self.p99 = p99; self.p95 = p95; self.p90 = p90; self.p75 = p75
        self.median = median; self.p25 = p25; self.p10 = p10; self.p5 = p5; self.p1 = p1; self.p0_1 = p0_1
        self.minimum = minimum
    }
}

extension PerplexityResult {
    public init(model: String, contextLength: Int, chunks: Int, scoredTokens: Int, perplexity: Double, uncertainty: Double,
                runningEstimates: [Double], seconds: Double, tokensPerSecond: Double) {
        self.model = model; self.contextLength = contextLength; self.chunks = chunks; self.scoredTokens = scoredTokens
        self.perplexity = perplexity; self.uncertainty = uncertainty; self.runningEstimates = runningEstimates
        self.seconds = seconds; self.tokensPerSecond = tokensPerSecond
    }
}
