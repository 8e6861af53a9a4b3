package stage

// Combine exposes combine to the tests.
var Combine = combine
