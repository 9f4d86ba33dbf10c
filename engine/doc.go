// Package engine is sluice's data-plane core: the records and batches that
// flow through it, the contract of a source (Receiver) and of the stages
// (Processor, RecordSink, DLQSink), and the Driver that runs them.
//
// # Flow
//
// Data enters from a Receiver (the gateway's HTTP receiver, a Kafka consumer,
// memtransport in tests) as a Batch: records, the INPUT commit tokens of that
// receive, and dead letters found at the source. The Driver moves one block
// at a time:
//
//	Recv / RecvLimited ─► DLQ policy (source dead letters)
//	  ─► lease the block's bytes (Config.Guard)
//	  ─► process (ProcessFunc; the wasm pipeline via Process)
//	  ─► DLQ policy (dead letters of the process stage)
//	  ─► sink (SinkFunc; Kafka via Sink)
//	  ─► DLQ policy (records the sink reported as failed: RecordErrors)
//	  ─► commit exactly the input tokens (Receiver.Commit)
//
// and data leaves through the sink (records) and the DLQ sink (dead letters).
// RunGoverned cuts the block into sub-blocks of the current byte budget with
// a SubBlockDrain, leases and sinks one at a time, and commits once after
// the final one. RunParsed decodes every record with codec.Parse first. The
// driver always owns the commit: a sink never commits tokens itself, so the
// per-record outcomes are routed before the commit.
//
// With Config.Depth > 1 RunGoverned overlaps the stages (overlap.go): the
// caller's goroutine receives and cuts sub-blocks while up to Depth of them
// are in flight, Depth workers process them concurrently, and one sink
// goroutine takes them in receive order — dead letters, sink, per-record
// outcomes, lease release and, after a block's final sub-block, its commit.
// The sink and commit order, and so every outcome, are those of the
// sequential loop (TestOverlappedMatchesSequential).
//
// # Contracts
//
//   - Tokens are decoupled from records: a process stage may fan out or in;
//     the commit is exactly the input tokens, once, after the sink accepted
//     the whole block (at-least-once).
//   - The ack barrier: a receive, process, DLQ-route, sink or commit error
//     stops the loop with a typed error (*ReceiveError, *ProcessError,
//     *DLQRouteError, *SinkError, *CommitError). The failed block is not
//     committed and no later block is received (with overlapped stages: no
//     later block is sunk or committed; those already received are
//     dropped), so a cumulative commit (a Kafka offset) never passes
//     records that were not delivered.
//   - Every dead letter goes through one DLQPolicy before its block commits.
//   - Per-record sink outcomes: a sink reports the records that failed for
//     reasons of their own or of their topic with a *RecordErrors (Benthos'
//     batch.Error, franz-go's per-record promises); every other record of
//     the write was accepted. The driver turns the failed ones into dead
//     letters (stage StageSink, the failure as the reason, the record as it
//     was sunk), routes them, and commits the block: one bad record never
//     fails the others. Any other sink error fails the write as a whole and
//     is terminal (*SinkError); so is a DLQ write that fails, a per-record
//     failure of a dead letter included (*DLQRouteError).
//   - Shutdown: cancelling ctx returns nil between blocks; a receiver that
//     returns ErrSourceClosed (closed and drained) returns nil too — that is
//     the graceful drain.
//   - Memory: every (sub-)block's bytes are leased from the MemoryGuard while
//     processed and sunk and released on every exit path; streaming holds one
//     sub-block's lease at a time, overlapped stages at most Depth (each at
//     most the budget read when its block was received, floor one record:
//     Depth × budget in all).
//
// # Cost
//
// The whole-block loop adds no allocation per block and a few nanoseconds per
// record (BenchmarkDriverPassThrough); TestDriverLoopDoesNotAllocatePerBlock
// holds it at zero. The overlapped loop adds three goroutine hand-offs per
// sub-block and, with a Guard, the Lease's allocation
// (BenchmarkDriverOverlapped); TestOverlappedLoopDoesNotAllocatePerBlock
// holds it at zero without one.
//
// # Seed tests
//
// The behaviour was ported from the seed driver; each of its 32 tests has a
// Go counterpart (driver_test.go), but the one of the sink-managed commit
// mode, which was dropped:
//
//	seed test                                                    Go test
//	fan_out_commits_source_tokens_not_output_count               TestFanOutCommitsSourceTokensNotOutputCount
//	sink_error_does_not_commit                                   TestSinkErrorDoesNotCommit
//	auto_commits_after_sink_ok                                   TestAutoCommitsAfterSinkOK
//	sink_managed_does_not_commit_in_engine                       (dropped with the sink-managed commit mode, which no line used)
//	ticker_fires_and_shutdown_stops_loop                         TestTickerFiresAndShutdownStopsLoop
//	on_demand_transform_reads_field_via_codec_parse              TestOnDemandTransformReadsFieldViaCodec
//	parsed_path_pre_parses_and_interner_dedups                   TestParsedPathPreParsesAndInternerDedups
//	parsed_path_routes_parse_failures_to_dlq                     TestParsedPathRoutesParseFailuresToDLQ
//	lease_ingress_batch_accounts_and_releases                    TestLeaseIngressBatchAccountsAndReleases
//	sink_error_blocks_later_ordered_commits                      TestSinkErrorBlocksLaterOrderedCommits
//	commit_error_blocks_later_ordered_commits                    TestCommitErrorBlocksLaterOrderedCommits
//	streaming_sink_error_blocks_later_ordered_commits            TestStreamingSinkErrorBlocksLaterOrderedCommits
//	split_groups_by_byte_target                                  TestSplitGroupsByByteTarget
//	split_floor_one_oversized_record                             TestSplitFloorOneOversizedRecord
//	split_empty_yields_no_sub_blocks                             TestSplitEmptyYieldsNoSubBlocks
//	split_smaller_than_target_is_one_sub_block                   TestSplitSmallerThanTargetIsOneSubBlock
//	streaming_peak_lease_bounded_to_one_sub_block                TestStreamingPeakLeaseBoundedToOneSubBlock
//	streaming_commits_once_after_final_sub_block                 TestStreamingCommitsOnceAfterFinalSubBlock
//	streaming_mid_sub_block_sink_error_skips_commit              TestStreamingMidSubBlockSinkErrorSkipsCommit
//	streaming_small_batch_is_single_sub_block                    TestStreamingSmallBatchIsSingleSubBlock
//	governed_on_streams_and_commits_via_memory_transport         TestGovernedOnStreamsAndCommitsViaMemoryTransport
//	governed_off_is_whole_batch_passthrough                      TestGovernedOffIsWholeBatchPassthrough
//	governed_gate_and_budget_share_pressure                      TestGovernedGateAndBudgetSharePressure
//	send_unaffected_by_pressure_pinned_high                      TestSendUnaffectedByPressurePinnedHigh
//	operational_never_oom_governed_pipeline_bounds_memory        TestOperationalNeverOOMGovernedPipelineBoundsMemory
//	governed_recv_is_byte_bounded_not_record_bounded             TestGovernedRecvIsByteBoundedNotRecordBounded
//	sub_block_drain_yields_incrementally                         TestSubBlockDrainYieldsIncrementally
//	parsed_parse_error_skip_drops_without_dlq_and_commits_survivors  TestParsedParseErrorSkipDropsWithoutDLQAndCommitsSurvivors
//	parsed_parse_error_fail_batch_skips_commit                   TestParsedParseErrorFailBatchSkipsCommit
//	parsed_parse_error_dlq_routes_before_commit                  TestParsedParseErrorDLQRoutesBeforeCommit
//	standard_send_batch_sink_does_not_silently_drop_dlq_entries  TestStandardSinkDoesNotSilentlyDropDLQEntries
//	dlq_route_failure_is_terminal_and_blocks_commit              TestDLQRouteFailureIsTerminalAndBlocksCommit
//
// The seed's custom receivers are small test receivers in helpers_test.go:
// OrderedReceiver and OrderedReceiverBad → orderedReceiver, CountingReceiver
// → countingReceiver, ByteAwareSource → byteAwareSource.
package engine
