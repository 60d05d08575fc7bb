import NIOCore

/// SHA-256 (FIPS 180-4), fed incrementally: ``update(_:)`` with each piece, then ``finalize()``.
///
/// Written for the demo to hash a streamed body without a crypto dependency; it is straightforward rather
/// than fast, and not meant for secrets (nothing here is constant-time).
struct SHA256 {
    /// The first 32 bits of the fractional parts of the cube roots of the first 64 primes.
    private static let roundConstants: [UInt32] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
        0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
        0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
        0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
        0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ]

    private static let blockSize = 64

    /// H0…H7: the first 32 bits of the fractional parts of the square roots of the first 8 primes.
    private var state: [UInt32] = [
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19,
    ]
    /// The start of a block that has not been completed yet (fewer than 64 bytes).
    private var pending: [UInt8] = []
    private var messageLength: UInt64 = 0

    init() {
        self.pending.reserveCapacity(Self.blockSize)
    }

    mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { self.update($0) }
    }

    mutating func update(_ bytes: some Sequence<UInt8>) {
        Array(bytes).withUnsafeBytes { self.update($0) }
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        self.messageLength &+= UInt64(bytes.count)
        var offset = 0
        if !self.pending.isEmpty {
            offset = min(Self.blockSize - self.pending.count, bytes.count)
            self.pending.append(contentsOf: bytes[..<offset])
            guard self.pending.count == Self.blockSize else { return }
            let block = self.pending
            block.withUnsafeBytes { self.compress($0) }
            self.pending.removeAll(keepingCapacity: true)
        }
        while bytes.count - offset >= Self.blockSize {
            self.compress(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Self.blockSize]))
            offset += Self.blockSize
        }
        self.pending.append(contentsOf: bytes[offset...])
    }

    /// Pads the message and returns its digest as 64 lowercase hex digits.
    consuming func finalize() -> String {
        let bitLength = self.messageLength &* 8
        // 0x80, then zeros up to 8 bytes short of a block boundary, then the length in bits, big-endian.
        let zeros = (Self.blockSize + 55 - self.pending.count) % Self.blockSize
        var padding: [UInt8] = [0x80] + [UInt8](repeating: 0, count: zeros)
        for shift in stride(from: 56, through: 0, by: -8) {
            padding.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }
        self.update(padding)
        assert(self.pending.isEmpty)
        return self.state.map { word in
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: 8 - hex.count) + hex
        }.joined()
    }

    /// Mixes one 64-byte block into the state.
    private mutating func compress(_ block: UnsafeRawBufferPointer) {
        var a = self.state[0], b = self.state[1], c = self.state[2], d = self.state[3]
        var e = self.state[4], f = self.state[5], g = self.state[6], h = self.state[7]
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { schedule in
            for t in 0..<16 {
                schedule[t] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: 4 * t, as: UInt32.self))
            }
            for t in 16..<64 {
                let w15 = schedule[t - 15], w2 = schedule[t - 2]
                let s0 = rotateRight(w15, 7) ^ rotateRight(w15, 18) ^ (w15 >> 3)
                let s1 = rotateRight(w2, 17) ^ rotateRight(w2, 19) ^ (w2 >> 10)
                schedule[t] = schedule[t - 16] &+ s0 &+ schedule[t - 7] &+ s1
            }
            for t in 0..<64 {
                let bigSigma1 = rotateRight(e, 6) ^ rotateRight(e, 11) ^ rotateRight(e, 25)
                let choose = (e & f) ^ (~e & g)
                let temp1 = h &+ bigSigma1 &+ choose &+ Self.roundConstants[t] &+ schedule[t]
                let bigSigma0 = rotateRight(a, 2) ^ rotateRight(a, 13) ^ rotateRight(a, 22)
                let majority = (a & b) ^ (a & c) ^ (b & c)
                let temp2 = bigSigma0 &+ majority
                h = g
                g = f
                f = e
                e = d &+ temp1
                d = c
                c = b
                b = a
                a = temp1 &+ temp2
            }
        }
        self.state[0] &+= a
        self.state[1] &+= b
        self.state[2] &+= c
        self.state[3] &+= d
        self.state[4] &+= e
        self.state[5] &+= f
        self.state[6] &+= g
        self.state[7] &+= h
    }
}

private func rotateRight(_ value: UInt32, _ count: UInt32) -> UInt32 {
    (value >> count) | (value << (32 - count))
}
