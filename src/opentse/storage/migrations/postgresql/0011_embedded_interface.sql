-- 0011_embedded_interface: versions before fb114d8 recorded every TSE placed at a
-- location without --interface (opentse site assign-tse) as reached over the HTTP
-- API, also a TSE only used embedded (opentse demo, tse create, pos --data); the
-- procedure documentation printed that. An installation upgraded from them kept the
-- wrong statement. Such rows of a TSE this installation's API does not serve (no
-- svc_tss row, the rule assign-tse applies since fb114d8) now say 'embedded', and
-- each correction is appended to the protocol (kind tse.interface_corrected, the
-- value before and after), so the protocol's tse.assigned entry and the procedure
-- documentation do not disagree without a word. One transaction: all or nothing.
INSERT INTO ops_protocol (seq, at, kind, org_id, location_id, tse_id, register_id, actor, details)
    SELECT (SELECT COALESCE(MAX(seq), 0) FROM ops_protocol)
               + ROW_NUMBER() OVER (ORDER BY t.assigned_at, t.tse_id),
           CAST(EXTRACT(EPOCH FROM now()) AS BIGINT),
           'tse.interface_corrected',
           COALESCE(l.org_id, ''),
           t.location_id,
           t.tse_id,
           '',
           'opentse migrate',
           '{"interface_type":"embedded (opentse library / CLI on the same machine)",'
           || '"interface_type_before":"HTTP (fiskaly SIGN DE v2 API)",'
           || '"reason":"migration 0011: the TSE is not served over this installation''s API"}'
    FROM ops_tses t LEFT JOIN ops_locations l ON l.id = t.location_id
    WHERE t.interface_type = 'HTTP (fiskaly SIGN DE v2 API)'
      AND t.tse_id NOT IN (SELECT tss_id FROM svc_tss);
UPDATE ops_tses
    SET interface_type = 'embedded (opentse library / CLI on the same machine)'
    WHERE interface_type = 'HTTP (fiskaly SIGN DE v2 API)'
      AND tse_id NOT IN (SELECT tss_id FROM svc_tss);
