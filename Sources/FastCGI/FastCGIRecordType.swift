/// The record types of FastCGI 1.0 (spec section 8), by their wire value.
public enum FastCGIRecordType: UInt8, Sendable {
    case beginRequest = 1, abortRequest, endRequest, params, stdin, stdout, stderr, data, getValues, getValuesResult,
        unknownType
}
