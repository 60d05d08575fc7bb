import FastCGIClient
import NIOHTTP1
import Testing

@testable import ProxyCore

/// The exchange's lifecycle decisions, without a loop, a socket or a backend. (`#expect`
/// captures its operand immutably, so mutating calls are made first and their answers checked.)
@Suite struct ExchangeStateMachineTests {
    /// A machine whose request is on a backend connection, waiting for the head.
    private func sending() -> ExchangeStateMachine {
        var machine = ExchangeStateMachine()
        let answer1 = machine.backendChosen(bufferBody: false)
        #expect(answer1)
        let answer2 = machine.connected()
        #expect(answer2)
        return machine
    }

    private func streaming(contentLength: Int? = nil) -> ExchangeStateMachine {
        var machine = sending()
        machine.stdoutReceived()
        let answer3 = machine.responseHead(status: 200, contentLength: contentLength, isHeadRequest: false)
        #expect(answer3 == .send(sendBody: true))
        return machine
    }

    @Test func aBufferedBodyIsReadBeforeThePoolIsAsked() {
        var machine = ExchangeStateMachine()
        let answer4 = machine.backendChosen(bufferBody: true)
        #expect(!answer4)
        #expect(machine.state == .awaitingBody)
        let answer5 = machine.bodyBuffered()
        #expect(answer5)
        #expect(machine.state == .leasing)
        let answer6 = machine.bodyBuffered()
        #expect(!answer6)
    }

    @Test func aGrantAfterTheEndIsGivenBack() {
        var machine = ExchangeStateMachine()
        _ = machine.backendChosen(bufferBody: false)
        let answer7 = machine.close()
        #expect(answer7)
        let answer8 = machine.connected()
        #expect(!answer8)
        let answer9 = machine.close()
        #expect(!answer9)
    }

    @Test func retryOnlyBeforeAnyOutputAndOnlyForSafeFailures() {
        var machine = sending()
        #expect(machine.mayRetry(after: .closedEarly, hasBody: false, method: .GET))
        #expect(machine.mayRetry(after: .staleRecord("x"), hasBody: false, method: .HEAD))
        #expect(machine.mayRetry(after: .rejected(protocolStatus: 2), hasBody: false, method: .POST))
        // The script may have died half-way through a POST.
        #expect(!machine.mayRetry(after: .closedEarly, hasBody: false, method: .POST))
        #expect(!machine.mayRetry(after: .closedEarly, hasBody: false, method: .PATCH))
        // The script got the request: it may have acted on it.
        #expect(!machine.mayRetry(after: .readTimeout, hasBody: false, method: .GET))
        #expect(!machine.mayRetry(after: .protocolViolation("x"), hasBody: false, method: .GET))
        // A body is not replayed.
        #expect(!machine.mayRetry(after: .closedEarly, hasBody: true, method: .GET))
        machine.stdoutReceived()
        #expect(!machine.mayRetry(after: .closedEarly, hasBody: false, method: .GET))
        // A retry is a new attempt: output of the old one no longer counts.
        let answer10 = machine.connected()
        #expect(answer10)
        #expect(machine.mayRetry(after: .closedEarly, hasBody: false, method: .GET))
    }

    @Test func aFailureBeforeTheHeadIsAnErrorPageAfterItACutResponse() {
        var before = sending()
        let answer11 = before.fail()
        #expect(answer11 == .errorPage)
        #expect(before.isDone)
        let answer12 = before.fail()
        #expect(answer12 == .none)

        var after = streaming()
        #expect(after.headWritten)
        let answer13 = after.fail()
        #expect(answer13 == .cut)
        #expect(!after.mayRetry(after: .closedEarly, hasBody: false, method: .GET))
    }

    @Test func headAndStatusesWithoutBodyPassNoBytes() {
        for (status, head) in [(204, false), (304, false), (200, true)] {
            var machine = sending()
            let answer14 = machine.responseHead(status: status, contentLength: 10, isHeadRequest: head)
            #expect(answer14 == .send(sendBody: false))
            let answer15 = machine.responseBody(10)
            #expect(answer15 == 0)
            let answer16 = machine.backendEnded(spoolHolds: false)
            #expect(answer16 == .finish)
        }
    }

    @Test func bytesBeyondContentLengthAreCutAndAShortBodyIsTruncated() {
        var long = streaming(contentLength: 10)
        let answer17 = long.responseBody(6)
        #expect(answer17 == 6)
        let answer18 = long.responseBody(6)
        #expect(answer18 == 4)
        let answer19 = long.responseBody(6)
        #expect(answer19 == 0)
        let answer20 = long.backendEnded(spoolHolds: false)
        #expect(answer20 == .finish)

        var short = streaming(contentLength: 10)
        let answer21 = short.responseBody(7)
        #expect(answer21 == 7)
        let answer22 = short.backendEnded(spoolHolds: false)
        #expect(answer22 == .truncated(missing: 3))
        #expect(short.isDone)

        var open = streaming()
        let answer23 = open.responseBody(1_000_000)
        #expect(answer23 == 1_000_000)
        let answer24 = open.backendEnded(spoolHolds: false)
        #expect(answer24 == .finish)
    }

    @Test func anEndWithBytesInTheSpoolWaitsForIt() {
        var machine = streaming(contentLength: 10)
        _ = machine.responseBody(8)
        let answer25 = machine.backendEnded(spoolHolds: true)
        #expect(answer25 == .waitForSpool)
        #expect(!machine.isDone)
        #expect(machine.headWritten)
        let answer26 = machine.spoolDrained()
        #expect(answer26 == .truncated(missing: 2))
        let answer27 = machine.spoolDrained()
        #expect(answer27 == .ignore)

        var clean = streaming()
        let answer28 = clean.backendEnded(spoolHolds: true)
        #expect(answer28 == .waitForSpool)
        let answer29 = clean.spoolDrained()
        #expect(answer29 == .finish)
    }

    @Test func anEndBeforeTheHeadIs502() {
        var machine = sending()
        let answer30 = machine.backendEnded(spoolHolds: false)
        #expect(answer30 == .noHead)
        let answer31 = machine.fail()
        #expect(answer31 == .errorPage)
        let answer32 = machine.backendEnded(spoolHolds: false)
        #expect(answer32 == .ignore)
    }

    @Test func redirectsRouteAgainUpToTheLimit() {
        var machine = sending()
        for round in 1...ExchangeStateMachine.maxRedirects {
            let answer33 = machine.redirected(to: "/next")
            #expect(answer33 == .redirect("/next"), "round \(round)")
            #expect(machine.state == .routing)
            let answer34 = machine.backendChosen(bufferBody: false)
            #expect(answer34)
            let answer35 = machine.connected()
            #expect(answer35)
        }
        let answer36 = machine.redirected(to: "/next")
        #expect(answer36 == .redirectLoop)
        let answer37 = machine.fail()
        #expect(answer37 == .errorPage)
    }

    @Test func aRedirectAfterTheHeadIsIgnored() {
        var machine = streaming()
        let answer38 = machine.redirected(to: "/x")
        #expect(answer38 == .ignore)
        let answer39 = machine.responseHead(status: 200, contentLength: nil, isHeadRequest: false)
        #expect(answer39 == .ignore)
    }

    @Test func refusalOnlyBeforeAnyBackendWork() {
        let fresh = ExchangeStateMachine()
        #expect(fresh.mayRefuse(protocolCanRefuse: true, backendAsked: false))
        #expect(!fresh.mayRefuse(protocolCanRefuse: false, backendAsked: false))
        #expect(!fresh.mayRefuse(protocolCanRefuse: true, backendAsked: true))
        #expect(!streaming().mayRefuse(protocolCanRefuse: true, backendAsked: false))
        var ended = ExchangeStateMachine()
        _ = ended.close()
        #expect(!ended.mayRefuse(protocolCanRefuse: true, backendAsked: false))
    }

    @Test func aFileEndsWhenItsLastPieceIsOut() {
        var machine = ExchangeStateMachine()
        machine.fileStarted()
        #expect(machine.headWritten)
        let answer40 = machine.fail()
        #expect(answer40 == .cut)

        var sent = ExchangeStateMachine()
        sent.fileStarted()
        let answer41 = sent.fileSent()
        #expect(answer41 == .finish)
        #expect(sent.isDone)
        let answer42 = sent.fileSent()
        #expect(answer42 == .ignore)
    }
}
