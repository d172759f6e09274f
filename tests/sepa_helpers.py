"""Bank files for the SEPA tests (issue 17): a camt.053 built from a pain.001."""
from __future__ import annotations

import datetime as dt

from lxml import etree

from portal.formatting import PARIS

PAIN = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"
MANDATE_IBAN = "FR7630001007941234567890185"
TODAY = dt.datetime.now(PARIS).date()


def camt_from_pain(run_xml: bytes, *, iban: str = MANDATE_IBAN, returned: int | None = None,
          unknown: bool = False, booked: dt.date = TODAY, prefix: str = "BQ") -> bytes:
    """A bank statement built from a pain.001 file: one booked debit per transfer,
    then optionally the return of one of them and one debit that matches nothing."""
    doc = etree.fromstring(run_xml)
    ns = {"p": PAIN}
    txs = [(tx.findtext("p:PmtId/p:EndToEndId", namespaces=ns),
            tx.findtext("p:Amt/p:InstdAmt", namespaces=ns))
           for tx in doc.iterfind(".//p:CdtTrfTxInf", ns)]
    entries = []

    def entry(ref, e2e, amount, cdi, rtr=""):
        return (f"<Ntry><NtryRef>{ref}</NtryRef><Amt Ccy=\"EUR\">{amount}</Amt>"
                f"<CdtDbtInd>{cdi}</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>{booked}</Dt></BookgDt>"
                f"<ValDt><Dt>{booked}</Dt></ValDt><AcctSvcrRef>{ref}</AcctSvcrRef>"
                "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>"
                f"{'RRTN' if rtr else 'ESCT'}</SubFmlyCd></Fmly></Domn></BkTxCd>"
                f"<NtryDtls><TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs>"
                f"<AmtDtls><TxAmt><Amt Ccy=\"EUR\">{amount}</Amt></TxAmt></AmtDtls>{rtr}"
                "</TxDtls></NtryDtls></Ntry>")
    for i, (e2e, amount) in enumerate(txs):
        entries.append(entry(f"{prefix}{i:05d}", e2e, amount, "DBIT"))
    if returned is not None:
        e2e, amount = txs[returned]
        entries.append(entry(f"{prefix}R{returned:04d}", e2e, amount, "CRDT",
                             "<RtrInf><Rsn><Cd>AC04</Cd></Rsn><AddtlInf>Compte clos</AddtlInf>"
                             "</RtrInf>"))
    if unknown:
        entries.append(entry(f"{prefix}X0001", "INCONNU-0001", "12.34", "DBIT"))
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
            "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02\"><BkToCstmrStmt>"
            f"<GrpHdr><MsgId>{prefix}-{booked:%Y%m%d}</MsgId><CreDtTm>{booked}T18:00:00</CreDtTm>"
            f"</GrpHdr><Stmt><Id>{prefix}-STMT</Id><CreDtTm>{booked}T18:00:00</CreDtTm>"
            f"<Acct><Id><IBAN>{iban}</IBAN></Id></Acct>"
            + "".join(f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
                      f"<Amt Ccy=\"EUR\">1000000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>"
                      f"<Dt><Dt>{booked}</Dt></Dt></Bal>" for code in ("OPBD", "CLBD"))
            + "".join(entries) + "</Stmt></BkToCstmrStmt></Document>").encode()


